"""Portmanteaus: join a prefix of one word to a suffix of another, ranked.

Candidates are every non-empty prefix of word1 followed by a non-empty suffix of
word2 (the two words themselves excluded). Each is described by a few features:
how likely the character LM finds it, and how it is put together. A linear
score over those features ranks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charlstm.alphabet import Alphabet
from charlstm.errors import CharlstmError
from charlstm.npmodel import NumpyLSTM

MIN_LENGTH = 3

FEATURES = (
    "lm_mean",  # mean log-probability per predicted symbol
    "lm_sum",  # total log-probability
    "overlap",  # letters shared at the join (w1's prefix end == w2's suffix start)
    "kept1",  # fraction of word1 kept
    "kept2",  # fraction of word2 kept
)
DEFAULT_WEIGHTS = {"lm_mean": 4.0, "lm_sum": 0.5, "overlap": 0.5, "kept1": 0.0, "kept2": 1.0}


@dataclass(frozen=True)
class Candidate:
    """word1[:prefix] + word2[len(word2) - suffix:]."""

    blend: str
    prefix: int
    suffix: int


@dataclass(frozen=True)
class Blend:
    blend: str
    score: float


def candidates(word1: str, word2: str, min_length: int = MIN_LENGTH) -> list[Candidate]:
    """All distinct prefix+suffix joins, shortest prefix first; never word1 or word2."""
    seen: set[str] = {word1, word2}
    out: list[Candidate] = []
    for i in range(1, len(word1) + 1):
        for j in range(len(word2), 0, -1):
            text = word1[:i] + word2[len(word2) - j :]
            if len(text) >= min_length and text not in seen:
                seen.add(text)
                out.append(Candidate(text, i, j))
    return out


def _overlap(word1: str, word2: str, cand: Candidate) -> int:
    """How many letters at the join appear in both words at that place."""
    start2 = len(word2) - cand.suffix
    n = 0
    while n < cand.prefix and n < start2 and word1[cand.prefix - 1 - n] == word2[start2 - 1 - n]:
        n += 1
    return n


def features(word1: str, word2: str, cands: list[Candidate], lm: NumpyLSTM, alphabet: Alphabet) -> np.ndarray:
    """A [candidates, len(FEATURES)] matrix; the LM scores all candidates in one pass."""
    log_probs = lm.sequence_log_probs([alphabet.encode(c.blend) for c in cands])
    rows = []
    for cand, lp in zip(cands, log_probs, strict=False):
        rows.append(
            [
                float(lp.mean()),
                float(lp.sum()),
                _overlap(word1, word2, cand),
                cand.prefix / len(word1),
                cand.suffix / len(word2),
            ]
        )
    return np.array(rows, dtype=np.float64).reshape(len(cands), len(FEATURES))


def match_case(text: str, word1: str, word2: str) -> str:
    """Capitalise ``text`` the way the inputs are: ``Brad Angelina`` -> ``Brangelina``."""
    if word1.isupper() and word2.isupper() and len(word1) > 1:
        return text.upper()
    if word1[:1].isupper():
        return text[:1].upper() + text[1:]
    return text


def blend(
    word1: str,
    word2: str,
    lm: NumpyLSTM,
    alphabet: Alphabet,
    top: int = 10,
    weights: dict[str, float] | None = None,
) -> list[Blend]:
    """The ``top`` best blends of two words, best first, capitalised like the input."""
    raw1, raw2 = word1.strip(), word2.strip()
    w1, w2 = alphabet.normalize(raw1), alphabet.normalize(raw2)
    for raw, w in ((raw1, w1), (raw2, w2)):
        if not w:
            raise CharlstmError("cannot blend an empty word")
        bad = alphabet.invalid(w)
        if bad:
            raise CharlstmError(
                f"{raw!r} has symbols outside the alphabet: {', '.join(repr(c) for c in bad)}"
            )
    cands = candidates(w1, w2)
    if not cands:
        raise CharlstmError(f"{raw1!r} and {raw2!r} are too short to blend")
    weights = weights or DEFAULT_WEIGHTS
    w = np.array([weights.get(name, 0.0) for name in FEATURES])
    scores = features(w1, w2, cands, lm, alphabet) @ w
    order = np.argsort(-scores, kind="stable")[:top]
    return [Blend(match_case(cands[i].blend, raw1, raw2), float(scores[i])) for i in order]
