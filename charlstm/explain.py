"""Why a model finds a name likely or not: the next-symbol distribution at every step.

A name is read as ``^`` (the start marker) + letters and predicts each letter and
then ``$`` (the end marker). At each step the explanation keeps the context so far,
the actual next symbol with its probability, its rank, the likeliest alternatives and
the surprisal ``-log2 p`` in bits. The log-probabilities add up to what ``score``
reports: both run the same numpy forward pass.

Only numpy and click are needed here; the HTML page lives in
:mod:`charlstm.explain_html`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import click
import numpy as np

from charlstm.alphabet import Alphabet
from charlstm.checkpoint import ModelDir
from charlstm.errors import check_option
from charlstm.evaluation import fold_names
from charlstm.npmodel import NumpyLSTM, log_softmax
from charlstm.options import EXPLAIN, ExplainOptions

START, END = "^", "$"  # how the text and the page show the start and end markers
LIKELY, POSSIBLE = 0.25, 0.05  # colour bands: green at or above LIKELY, yellow above POSSIBLE


@dataclass(frozen=True)
class Step:
    """One predicted symbol: ``symbol`` after ``context`` (``"\\n"`` is the end marker)."""

    context: str
    symbol: str
    log_prob: float  # natural log, as the model computes it (float32)
    rank: int  # 1 if the model's favourite
    alternatives: tuple[tuple[str, float], ...]  # the likeliest other symbols, with probabilities

    @property
    def prob(self) -> float:
        return math.exp(self.log_prob)

    @property
    def surprisal_bits(self) -> float:
        return -self.log_prob / math.log(2)

    def to_json(self, number: int) -> dict:
        return {
            "step": number,
            "context": self.context,
            "symbol": self.symbol,
            "prob": round(self.prob, 6),
            "log_prob": self.log_prob,
            "surprisal_bits": round(self.surprisal_bits, 4),
            "rank": self.rank,
            "alternatives": [{"symbol": s, "prob": round(p, 6)} for s, p in self.alternatives],
        }


@dataclass(frozen=True)
class Explanation:
    """A name's steps and the whole distribution over the next symbol at each."""

    name: str  # as the user wrote it
    letters: str  # folded by the model's alphabet
    steps: tuple[Step, ...]
    probs: np.ndarray  # [steps, symbols]: p(next symbol) at each step
    symbols: tuple[str, ...]  # the model's alphabet, end marker first
    tag: str | None = None  # the style a tagged model read it in (or the mixture's beliefs)
    tag_id: int | None = None  # the tag whose gates the page shows: the one, or the likeliest

    @property
    def log_prob(self) -> float:
        """Total log-probability in nats, summed like ``score`` sums it."""
        return float(np.array([s.log_prob for s in self.steps], np.float32).sum(dtype=np.float64))

    @property
    def nll_per_char(self) -> float:
        return -self.log_prob / len(self.steps)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "letters": self.letters,
            "tag": self.tag,
            "log_prob": self.log_prob,
            "bits": round(-self.log_prob / math.log(2), 4),
            "nll_per_char": self.nll_per_char,
            "bits_per_char": self.nll_per_char / math.log(2),
            "steps": [s.to_json(k) for k, s in enumerate(self.steps, 1)],
        }


def explain(model: ModelDir, raw: str, top: int = EXPLAIN.top, tag: str | None = None) -> Explanation:
    """``charlstm explain``: :func:`explain_name` with ``model``, under ``tag`` or, for a
    tagged model without one, the mixture of its tags by their training frequencies."""
    meta = model.meta
    chosen = [tag] if tag is not None else meta.tags
    weights = meta.tag_weights(chosen) if meta.tags or tag is not None else {}
    ids = model.tag_ids(chosen) if weights else []
    tags = [(t, i, weights[t]) for t, i in zip(chosen, ids, strict=True)]
    return explain_name(model.lm(), model.alphabet, raw, top, tags)


def explain_name(
    lm: NumpyLSTM,
    alphabet: Alphabet,
    raw: str,
    top: int = EXPLAIN.top,
    tags: Sequence[tuple[str, int, float]] = (),
) -> Explanation:
    """Explain how ``lm`` predicts the name ``raw`` (folded and checked first).

    ``top`` likeliest alternatives are kept per step. A tagged model reads the name
    under ``tags`` (name, id, weight): one tag, or a mixture of several, where each
    step's distribution mixes the tags' by how well each has predicted the name so far
    (so the total is the mixture's probability of the name, as ``score`` gives it).
    """
    check_option("top", top, ExplainOptions)
    letters = fold_names(alphabet, [raw], option="name")[0]
    ids = alphabet.encode(letters)
    inputs = np.array([ids[:-1]])
    if not tags:
        log_probs, tag, tag_id = log_softmax(lm.logits(inputs))[0].astype(np.float64), None, None
    else:
        per_tag = np.stack([log_softmax(lm.logits(inputs, np.array([i])))[0] for _, i, _ in tags])
        log_probs, belief = _mixture(per_tag.astype(np.float64), ids[1:], [w for *_, w in tags])
        best = int(np.argmax(belief))
        tag, tag_id = tags[best][0], tags[best][1]
        if len(tags) > 1:
            tag = f"mixed ({', '.join(f'{t} {p:.2f}' for (t, _, _), p in zip(tags, belief, strict=True))})"
    steps = []
    for t, target in enumerate(ids[1:]):
        row = log_probs[t]
        order = np.argsort(-row, kind="stable")
        others = [int(k) for k in order if k != target][:top]
        steps.append(
            Step(
                context=letters[:t],
                symbol=alphabet.symbols[target],
                log_prob=float(row[target]),
                rank=int(np.flatnonzero(order == target)[0]) + 1,
                alternatives=tuple((alphabet.symbols[k], float(np.exp(row[k]))) for k in others),
            )
        )
    return Explanation(raw.strip(), letters, tuple(steps), np.exp(log_probs), alphabet.symbols, tag, tag_id)


def _mixture(
    per_tag: np.ndarray, targets: list[int], weights: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Each step's mixture distribution [steps, symbols] from each tag's [tags, steps, symbols],
    and the belief over the tags once the whole name is read."""
    read = per_tag[:, np.arange(len(targets)), targets]  # [tags, steps]: log p of each actual symbol
    so_far = np.log(weights)[:, None] + np.cumsum(read, axis=1) - read  # before each step
    belief = np.exp(so_far - so_far.max(axis=0))
    belief /= belief.sum(axis=0)
    mixed = np.log(np.einsum("ks,ksv->sv", belief, np.exp(per_tag)))
    final = np.log(weights) + read.sum(axis=1)
    return mixed, np.exp(final - final.max()) / np.exp(final - final.max()).sum()


def shown(symbol: str) -> str:
    """A symbol for display: the end marker as ``$``."""
    return END if symbol == "\n" else symbol


def probability_colour(p: float) -> str:
    """The terminal colour of a probability band."""
    return "green" if p >= LIKELY else "yellow" if p >= POSSIBLE else "red"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def format_explanation(explanation: Explanation) -> str:
    """The explanation as an aligned table with ANSI colours (``click.echo`` strips them
    when the output is not a terminal)."""
    steps = explanation.steps
    width = max(len("context"), len(explanation.letters) + 1)
    lines = [
        f"{explanation.name}: {len(explanation.letters)} letters + end, "
        f"{START} = start, {END} = end of name, surprisal = -log2 p",
        f"{'step':>4}  {'context':<{width}}  next  {'p':>6}  {'bits':>5}  rank  likeliest other symbols",
    ]
    for number, step in enumerate(steps, 1):
        colour = probability_colour(step.prob)
        others = "  ".join(
            click.style(f"{shown(s)} {_p(p)}", fg=probability_colour(p))
            if p >= POSSIBLE
            else f"{shown(s)} {_p(p)}"
            for s, p in step.alternatives
        )
        lines.append(
            f"{number:>4}  {START + step.context:<{width}}  "
            + click.style(f"{shown(step.symbol):<4}  {_p(step.prob):>6}", fg=colour, bold=True)
            + f"  {step.surprisal_bits:>5.2f}  {step.rank:>4}  {others}"
        )
    total = explanation.log_prob
    lines.append(
        f"total: log_prob {total:.4f} nats = {-total / math.log(2):.2f} bits over {len(steps)} symbols "
        f"({explanation.nll_per_char:.4f} nats, {explanation.nll_per_char / math.log(2):.4f} bits per symbol)"
    )
    return "\n".join(lines)
