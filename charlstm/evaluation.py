"""Likelihood of names under a model: per-name scores, corpus NLL per symbol, and the
tag a name most likely has (classification).

Under a tagged model a name is scored under its tag when it has one; without one, as
the mixture over the model's tags weighted by their training frequencies
(``log sum_t w_t p(name | t)``), so that the NLL of an untagged file stays a proper
NLL. Classification is Bayes' rule over the per-tag likelihoods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from charlstm.alphabet import Alphabet, OutsideAlphabet
from charlstm.checkpoint import ModelDir
from charlstm.data import Corpus
from charlstm.errors import CharlstmError, OptionError
from charlstm.npmodel import NumpyLSTM
from charlstm.options import PRIORS


@dataclass(frozen=True)
class NameScore:
    """How likely the model finds one name (letters and end marker predicted)."""

    name: str
    log_prob: float
    symbols: int

    @property
    def nll_per_char(self) -> float:
        return -self.log_prob / self.symbols

    @property
    def bits_per_char(self) -> float:
        return self.nll_per_char / math.log(2)


@dataclass(frozen=True)
class Evaluation:
    """Corpus NLL: total NLL of every predicted symbol divided by their count."""

    nll_per_char: float
    bits_per_char: float
    perplexity: float
    names: int
    symbols: int
    per_tag: dict[str, float] = field(default_factory=dict)  # NLL per symbol of each tag's lines

    def to_json(self) -> dict:
        data = asdict(self)
        if not self.per_tag:
            del data["per_tag"]
        return data


def fold_names(alphabet: Alphabet, texts: Sequence[str], option: str = "names") -> list[str]:
    """Each text stripped and folded into a name; :class:`OptionError` (naming ``option``)
    for one that is none."""
    names = []
    for text in texts:
        try:
            name = alphabet.fold_checked(text.strip())
        except OutsideAlphabet:
            name = ""
        if not name:
            raise OptionError(option, f"{text!r} is not a name in {alphabet.describe()}")
        names.append(name)
    return names


def tag_log_probs(lm: NumpyLSTM, alphabet: Alphabet, names: Sequence[str]) -> np.ndarray:
    """Log-probability of each name under each tag of a tagged model: [names, tags]."""
    sequences = [alphabet.encode(n) for n in names]
    tags = np.repeat(np.arange(lm.n_tags), len(names))
    log_probs = lm.sequence_log_probs(sequences * lm.n_tags, tags)
    totals = np.array([lp.sum(dtype=np.float64) for lp in log_probs])
    return totals.reshape(lm.n_tags, len(names)).T


def score_names(
    lm: NumpyLSTM,
    alphabet: Alphabet,
    names: Sequence[str],
    tags: Sequence[int | None] | None = None,
    tag_weights: Sequence[float] | None = None,
) -> list[NameScore]:
    """Score normalized names; each predicts len(name) letters plus the end marker.

    Under a tagged model, ``tags`` gives each name's tag id (None: untagged) and
    ``tag_weights`` the mixture weights for untagged names (default: uniform).
    """
    symbols = [len(n) + 1 for n in names]
    if not lm.n_tags:
        log_probs = lm.sequence_log_probs([alphabet.encode(n) for n in names])
        return [
            NameScore(name, float(lp.sum(dtype=np.float64)), len(lp))
            for name, lp in zip(names, log_probs, strict=False)
        ]
    tags = [None] * len(names) if tags is None else list(tags)
    tagged = [i for i, t in enumerate(tags) if t is not None]
    untagged = [i for i, t in enumerate(tags) if t is None]
    totals = np.empty(len(names))
    if tagged:
        sequences = [alphabet.encode(names[i]) for i in tagged]
        log_probs = lm.sequence_log_probs(sequences, [tags[i] for i in tagged])
        totals[tagged] = [lp.sum(dtype=np.float64) for lp in log_probs]
    if untagged:
        weights = np.full(lm.n_tags, 1 / lm.n_tags) if tag_weights is None else np.asarray(tag_weights)
        per_tag = tag_log_probs(lm, alphabet, [names[i] for i in untagged])
        totals[untagged] = _logsumexp(per_tag + np.log(weights), axis=1)
    return [NameScore(n, float(t), s) for n, t, s in zip(names, totals, symbols, strict=True)]


def classify(log_probs: np.ndarray, prior: Sequence[float]) -> np.ndarray:
    """P(tag | name) from [names, tags] log-likelihoods and a prior over the tags."""
    joint = log_probs + np.log(np.asarray(prior, np.float64))
    return np.exp(joint - _logsumexp(joint, axis=1)[:, None])


def evaluate_names(
    lm: NumpyLSTM,
    alphabet: Alphabet,
    names: Sequence[str],
    tags: Sequence[int | None] | None = None,
    tag_weights: Sequence[float] | None = None,
    tag_names: Sequence[str] = (),
) -> Evaluation:
    """NLL per predicted symbol over all ``names`` (duplicates count every time).

    With ``tags`` (see :func:`score_names`) and the model's ``tag_names``, the
    evaluation also gives the NLL per symbol of the lines of each tag.
    """
    if not names:
        raise CharlstmError("no names to evaluate")
    scores = score_names(lm, alphabet, names, tags, tag_weights)
    total = -math.fsum(s.log_prob for s in scores)
    symbols = sum(s.symbols for s in scores)
    nll = total / symbols
    per_tag = {}
    if tags is not None and tag_names:
        for tag_id, tag in enumerate(tag_names):
            mine = [s for s, t in zip(scores, tags, strict=True) if t == tag_id]
            if mine:
                per_tag[tag] = -math.fsum(s.log_prob for s in mine) / sum(s.symbols for s in mine)
    return Evaluation(nll, nll / math.log(2), math.exp(nll), len(scores), symbols, per_tag)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


@dataclass(frozen=True)
class Classification:
    """P(tag | name) of one name, best first."""

    name: str
    probabilities: dict[str, float]

    def to_json(self) -> dict:
        return {"name": self.name, "probabilities": self.probabilities}


def classify_names(model: ModelDir, texts: Sequence[str], prior: str = PRIORS[0]) -> list[Classification]:
    """Which tag each name most likely has: Bayes over the per-tag likelihoods.

    The prior is uniform over the tags (so that many more surnames than male names in
    training does not make every name a surname), or their training ``frequency``.
    """
    model.require_tags("classify")
    if prior not in PRIORS:
        raise OptionError("prior", f"unknown prior {prior!r}; expected one of {', '.join(PRIORS)}")
    meta = model.meta
    names = fold_names(model.alphabet, texts)
    weights = meta.tag_weights() if prior == "frequency" else dict.fromkeys(meta.tags, 1 / len(meta.tags))
    posterior = classify(tag_log_probs(model.lm(), model.alphabet, names), [weights[t] for t in meta.tags])
    results = []
    for text, row in zip(texts, posterior, strict=True):
        order = np.argsort(-row, kind="stable")
        results.append(Classification(text, {meta.tags[i]: float(row[i]) for i in order}))
    return results


def score_texts(model: ModelDir, texts: Sequence[str], tag: str | None = None) -> list[NameScore]:
    """``charlstm score``: each text folded into a name and scored (under ``tag`` if given;
    a tagged model without one scores the frequency-weighted mixture over its tags)."""
    names = fold_names(model.alphabet, texts)
    tag_ids = [model.tag_ids([tag])[0]] * len(names) if tag is not None else None
    return score_names(model.lm(), model.alphabet, names, tag_ids, _mixture(model))


def evaluate_file(model: ModelDir, corpus: Corpus, tag: str | None = None) -> Evaluation:
    """``charlstm evaluate``: every line of ``corpus`` under its own tag, else ``tag``, else
    the mixture; a tagged model also reports the NLL of each tag's lines."""
    if tag is not None:
        model.tag_ids([tag])
    tags = [t if t is not None else tag for t in corpus.tags]
    if any(t is not None for t in tags):
        model.require_tags("a tagged names file")
    meta = model.meta
    unknown = sorted({t for t in tags if t is not None} - set(meta.tags))
    if unknown:
        raise CharlstmError(
            f"{corpus.path}: tag(s) {', '.join(unknown)} not among the model's ({', '.join(meta.tags)})"
        )
    ids = [None if t is None else meta.tags.index(t) for t in tags] if meta.tags else None
    return evaluate_names(model.lm(), model.alphabet, corpus.names, ids, _mixture(model), meta.tags)


def _mixture(model: ModelDir) -> list[float] | None:
    """The weights of an untagged name's mixture over a tagged model's tags."""
    weights = model.meta.tag_weights() if model.meta.tags else None
    return None if weights is None else [weights[t] for t in model.meta.tags]
