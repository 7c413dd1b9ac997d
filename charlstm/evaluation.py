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
from charlstm.errors import CharlstmError, OptionError
from charlstm.npmodel import NumpyLSTM


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


def fold_names(alphabet: Alphabet, texts: Sequence[str]) -> list[str]:
    """Each text stripped and folded into a name; :class:`OptionError` for one that is none."""
    names = []
    for text in texts:
        try:
            name = alphabet.fold_checked(text.strip())
        except OutsideAlphabet:
            name = ""
        if not name:
            raise OptionError("names", f"{text!r} is not a name in {alphabet.describe()}")
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
