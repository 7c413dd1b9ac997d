"""Sampling new names: all at once, one LSTM step per symbol, state carried along.

A round of ``k`` independent samples is drawn as a tree: every distinct prefix is one
row carrying its LSTM state and the number of samples that share it, and at each step
a row's samples split among the next symbols multinomially. This draws exactly the
same distribution as ``k`` separate rows, but common prefixes (most samples start
with one of a few hundred letter pairs) are computed once.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import numpy as np

from charlstm.alphabet import Alphabet, OutsideAlphabet
from charlstm.errors import CharlstmError, OptionError
from charlstm.npmodel import NumpyLSTM, log_softmax
from charlstm.options import GENERATE

ROUND_SAMPLES = 1 << 18  # samples drawn per round at most
INITIAL_YIELD = 0.5  # first guess of the fraction of samples that are new names
ROUNDS_WITHOUT_NEW = 5  # give up after this many rounds that add no name


class Sample(NamedTuple):
    """A sampled name and its log-probability under the model (temperature 1)."""

    name: str
    log_prob: float


def sample_names(
    lm: NumpyLSTM,
    alphabet: Alphabet,
    n: int,
    *,
    seed: int | None = None,
    temperature: float = GENERATE.temperature,
    top_k: int | None = None,
    prefix: str = "",
    min_length: int = GENERATE.min_length,
    max_length: int = GENERATE.max_length,
    unique: bool = GENERATE.unique,
    exclude: Collection[str] = (),
) -> list[Sample]:
    """Draw exactly ``n`` names, or raise :class:`CharlstmError` if the constraints
    leave the model unable to produce that many.

    ``prefix`` (folded and checked by the alphabet) is fed to the model first; the end
    marker is withheld until ``min_length`` letters; names longer than ``max_length``
    are discarded; ``exclude`` names (e.g. the training set) are skipped. The names
    come in the order an endless stream of independent samples would first produce
    them. An unusable option raises :class:`OptionError` naming it.
    """
    prefix = _check_options(alphabet, n, temperature, top_k, prefix, min_length, max_length)
    draw = _RoundSampler(
        lm, alphabet, temperature, top_k, alphabet.encode_letters(prefix), min_length, max_length
    )
    rng = np.random.default_rng(seed)
    excluded = set(exclude)
    results: list[Sample] = []
    seen: set[str] = set()
    drawn, fruitless = 0, 0
    yield_rate = INITIAL_YIELD if unique else 1.0  # estimated new names per sample drawn
    while len(results) < n:
        if fruitless >= ROUNDS_WITHOUT_NEW or drawn >= 200 * n + 20000:
            raise CharlstmError(
                f"could only produce {len(results)} of {n} {'distinct ' if unique else ''}names "
                "under these constraints; relax them or ask for fewer names"
            )
        want = n - len(results)
        size = min(ROUND_SAMPLES, int(want / yield_rate * 1.1) + 64)
        drawn += size
        names, log_probs = draw(size, rng, distinct=unique)
        skip = seen | excluded if unique else excluded
        fresh = [i for i, name in enumerate(names) if name not in skip][:want]
        results.extend(Sample(names[i], log_probs[i]) for i in fresh)
        if unique:
            seen.update(names[i] for i in fresh)
        fruitless = 0 if fresh else fruitless + 1
        yield_rate = max(len(fresh) / size, 1e-3)
    return results


def _check_options(
    alphabet: Alphabet,
    n: int,
    temperature: float,
    top_k: int | None,
    prefix: str,
    min_length: int,
    max_length: int,
) -> str:
    """The folded prefix, once every option is checked; :class:`OptionError` names a bad one."""
    if n < 1:
        raise OptionError("count", f"the number of names must be at least 1 (got {n})")
    if not temperature > 0:
        raise OptionError("temperature", f"the temperature must be greater than 0 (got {temperature})")
    if top_k is not None and top_k < 1:
        raise OptionError("top_k", f"top-k must be at least 1 (got {top_k})")
    if min_length < 1:
        raise OptionError("min_length", f"{min_length} is less than 1")
    if max_length < min_length:
        raise OptionError("min_length", f"{min_length} is greater than the maximum length {max_length}")
    try:
        prefix = alphabet.fold_checked(prefix)
    except OutsideAlphabet as exc:
        raise OptionError("prefix", exc.letters()) from None
    if len(prefix) > max_length:
        raise OptionError("prefix", f"{prefix!r} is longer than the maximum length {max_length}")
    return prefix


class _RoundSampler:
    """Draws rounds of independent samples under fixed sampling settings."""

    def __init__(
        self,
        lm: NumpyLSTM,
        alphabet: Alphabet,
        temperature: float,
        top_k: int | None,
        prefix_ids: list[int],
        min_length: int,
        max_length: int,
    ) -> None:
        self.lm = lm
        self.temperature = temperature
        self.top_k = top_k if top_k is not None and top_k < lm.vocab_size else None
        self.min_length = min_length
        self.max_length = max_length
        self.chars = np.array(alphabet.symbols, dtype="U1")  # symbol id -> character
        # The prefix is shared by every sample: run it once, on one row.
        self.letters = np.array([prefix_ids], np.min_scalar_type(len(alphabet)))
        self.start = len(prefix_ids)
        self.state = lm.initial_state(1)
        self.ids = np.zeros(1, np.intp)
        self.log_prob = 0.0
        for symbol in prefix_ids:
            logits, self.state = lm.step(self.ids, self.state)
            self.log_prob += float(log_softmax(logits)[0, symbol])
            self.ids = np.full(1, symbol, np.intp)

    def __call__(self, size: int, rng: np.random.Generator, distinct: bool) -> tuple[list[str], list[float]]:
        """Names and log-probs of ``size`` independent samples in the order drawn (each
        name once, at its first occurrence, if ``distinct``); over-long ones dropped."""
        names, counts, log_probs = self._tree(size, rng)
        order = rng.permutation(np.repeat(np.arange(len(names)), counts))
        if distinct:
            _, first = np.unique(order, return_index=True)
            order = order[np.sort(first)]
        return names[order].tolist(), log_probs[order].tolist()

    def _tree(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``size`` samples; return each distinct name, its count and log-prob."""
        lm = self.lm
        ids, state, letters = self.ids, self.state, self.letters
        counts = np.array([size], np.int64)
        log_prob = np.array([self.log_prob])
        done_names, done_counts, done_log_probs = [], [], []
        for position in range(self.start, self.max_length + 1):  # letters so far
            logits, state = lm.step(ids, state)
            log_p = log_softmax(logits)
            children = self._split(log_p, counts, position, rng)
            ended = np.flatnonzero(children[:, 0])
            if len(ended):
                done_names.append(self.chars[letters[ended]].view(f"U{position}").ravel())
                done_counts.append(children[ended, 0])
                done_log_probs.append(log_prob[ended] + log_p[ended, 0])
            if position == self.max_length:
                break  # letters beyond the maximum length: those samples are dropped
            rows, symbols = np.nonzero(children[:, 1:])
            if not len(rows):
                break
            symbols += 1
            counts = children[rows, symbols]
            log_prob = log_prob[rows] + log_p[rows, symbols]
            grown = np.empty((len(rows), position + 1), letters.dtype)
            grown[:, :position] = letters[rows]
            grown[:, position] = symbols
            letters, ids = grown, symbols
            state = [(h[rows], c[rows]) for h, c in state]
        if not done_names:
            return np.array([], "U1"), np.array([], np.int64), np.array([])
        return np.concatenate(done_names), np.concatenate(done_counts), np.concatenate(done_log_probs)

    def _split(
        self, log_p: np.ndarray, counts: np.ndarray, position: int, rng: np.random.Generator
    ) -> np.ndarray:
        """How each row's samples divide among the next symbols: [rows, vocab] counts."""
        weights = log_p.astype(np.float64)
        if position < self.min_length:
            weights[:, 0] = -np.inf
        if self.top_k is not None:
            kth = np.partition(weights, -self.top_k, axis=1)[:, -self.top_k, None]
            weights[weights < kth] = -np.inf
        # Shift the likeliest allowed symbol to 0 before tempering: however small the
        # temperature, it keeps probability 1 rather than 0 / 0.
        weights -= weights.max(axis=1, keepdims=True)
        if self.temperature != 1:
            weights /= self.temperature
        probs = np.exp(weights)
        probs /= probs.sum(axis=1, keepdims=True)
        children = np.zeros(probs.shape, np.int64)
        single = counts == 1
        if single.all():
            children[np.arange(len(counts)), _categorical(probs, rng)] = 1
        else:
            one = np.flatnonzero(single)
            children[one, _categorical(probs[one], rng)] = 1
            many = np.flatnonzero(~single)
            children[many] = rng.multinomial(counts[many], probs[many])
        return children


def _categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of normalized probabilities (inverse CDF)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((len(cdf), 1)) * cdf[:, -1:]
    # The first symbol whose cumulative probability exceeds u: never a zero-probability one.
    return np.minimum((cdf <= u).sum(axis=1), probs.shape[1] - 1)
