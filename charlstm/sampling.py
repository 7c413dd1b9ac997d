"""Sampling new names: all at once, one LSTM step per symbol, state carried along."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from charlstm.alphabet import Alphabet
from charlstm.data import DEFAULT_MAX_LENGTH
from charlstm.errors import CharlstmError
from charlstm.npmodel import NumpyLSTM, log_softmax

MAX_BATCH = 16384


@dataclass(frozen=True)
class Sample:
    """A sampled name and its log-probability under the model (temperature 1)."""

    name: str
    log_prob: float


def sample_names(
    lm: NumpyLSTM,
    alphabet: Alphabet,
    n: int,
    *,
    seed: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    prefix: str = "",
    min_length: int = 1,
    max_length: int = DEFAULT_MAX_LENGTH,
    unique: bool = True,
    exclude: Collection[str] = (),
) -> list[Sample]:
    """Draw exactly ``n`` names, or raise :class:`CharlstmError` if the constraints
    leave the model unable to produce that many.

    ``prefix`` (normalized letters) is fed to the model first; the end marker is
    withheld until ``min_length`` letters; names longer than ``max_length`` are
    discarded; ``exclude`` names (e.g. the training set) are skipped.
    """
    if n < 0:
        raise CharlstmError("the number of names must not be negative")
    if temperature <= 0:
        raise CharlstmError("the temperature must be greater than 0")
    if top_k is not None and top_k < 1:
        raise CharlstmError("top-k must be at least 1")
    if min_length < 1 or max_length < min_length:
        raise CharlstmError("lengths must satisfy 1 <= min-length <= max-length")
    if len(prefix) > max_length:
        raise CharlstmError(f"the prefix is longer than the maximum length ({max_length})")
    prefix_ids = alphabet.encode_letters(prefix)
    rng = np.random.default_rng(seed)
    excluded = set(exclude)
    results: list[Sample] = []
    seen: set[str] = set()
    drawn, fruitless = 0, 0
    budget = 200 * n + 20000
    while len(results) < n:
        if drawn >= budget or fruitless >= 5:
            raise CharlstmError(
                f"could only produce {len(results)} of {n} "
                f"{'distinct ' if unique else ''}names under these constraints"
            )
        want = n - len(results)
        batch = min(MAX_BATCH, max(64, int(want * 1.1) + 16))
        drawn += batch
        before = len(results)
        for sample in _sample_batch(
            lm, alphabet, batch, rng, temperature, top_k, prefix_ids, min_length, max_length
        ):
            if sample.name in excluded or (unique and sample.name in seen):
                continue
            seen.add(sample.name)
            results.append(sample)
            if len(results) == n:
                break
        fruitless = fruitless + 1 if len(results) == before else 0
    return results


def _sample_batch(
    lm: NumpyLSTM,
    alphabet: Alphabet,
    batch: int,
    rng: np.random.Generator,
    temperature: float,
    top_k: int | None,
    prefix_ids: list[int],
    min_length: int,
    max_length: int,
) -> list[Sample]:
    """One batch of independent samples; rows that overrun ``max_length`` are dropped."""
    state = lm.initial_state(batch)
    ids = np.zeros(batch, dtype=np.int64)
    log_prob = np.zeros(batch, dtype=np.float64)
    letters = np.zeros((batch, max_length), dtype=np.int64)
    rows = np.arange(batch)  # original row of each live sequence
    done: list[tuple[int, int]] = []  # (row, length) of finished names
    for symbol in prefix_ids:
        logits, state = lm.step(ids, state)
        log_prob += log_softmax(logits)[:, symbol]
        ids = np.full(batch, symbol, dtype=np.int64)
    letters[:, : len(prefix_ids)] = prefix_ids
    for position in range(len(prefix_ids), max_length + 1):
        logits, state = lm.step(ids, state)
        log_p = log_softmax(logits)
        choice = _draw(log_p, rng, temperature, top_k, allow_end=position >= min_length)
        log_prob[rows] += log_p[np.arange(len(rows)), choice]
        ended = choice == 0
        done.extend((int(r), position) for r in rows[ended])
        keep = ~ended if position < max_length else np.zeros_like(ended)
        letters[rows[keep], min(position, max_length - 1)] = choice[keep]
        rows, ids = rows[keep], choice[keep]
        state = [(h[keep], c[keep]) for h, c in state]
        if not len(rows):
            break
    done.sort()
    return [Sample(alphabet.decode(letters[r, :length]), float(log_prob[r])) for r, length in done]


def _draw(
    log_p: np.ndarray,
    rng: np.random.Generator,
    temperature: float,
    top_k: int | None,
    allow_end: bool,
) -> np.ndarray:
    """Sample one symbol per row from tempered, optionally top-k-truncated log-probs."""
    scaled = log_p / temperature if temperature != 1 else log_p.copy()
    if not allow_end:
        scaled[:, 0] = -np.inf
    if top_k is not None and top_k < scaled.shape[1]:
        kth = np.partition(scaled, -top_k, axis=1)[:, -top_k, None]
        scaled[scaled < kth] = -np.inf
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(cdf))[:, None] * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=1), cdf.shape[1] - 1)
