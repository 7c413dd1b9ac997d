"""Portmanteaus: join a prefix of one word to a suffix of another, ranked.

Candidates are every non-empty prefix of word1 followed by a non-empty suffix of
word2 (the two words themselves excluded). Each is described by features
(:mod:`charlstm.blend_features`): how it is put together, and how likely the bundled
names LM and words LM find it. A linear score over those features, fitted as a
conditional logit on known blends (``benchmarks/fit_blend.py``, weights shipped in
``blend_weights.json``), ranks them; a candidate's shown score is its probability
under that model among all candidates of its pair.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlstm.alphabet import Alphabet, OutsideAlphabet
from charlstm.blend_features import FEATURES, feature_matrix
from charlstm.checkpoint import ModelDir
from charlstm.errors import CharlstmError, check_option
from charlstm.npmodel import NumpyLSTM
from charlstm.options import BLEND, BlendOptions

MIN_LENGTH = 3
MAX_WORD_LENGTH = 40  # candidates grow as the product of the lengths; longer is no word
WEIGHTS_FILE = Path(__file__).parent / "blend_weights.json"
CHUNK_PAIRS = 256  # pairs scored together in one batched pass per LM
EXACT_AT = (1, 3, 10)  # evaluate reports Exact@1, @3 and @10


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
    """All distinct prefix+suffix joins, shortest prefix first; never word1 or word2.

    Joins shorter than ``min_length`` are dropped, unless the two words together are
    shorter than that (``a`` + ``b`` still gives ``ab``).
    """
    min_length = min(min_length, len(word1) + len(word2))
    seen: set[str] = {word1, word2}
    out: list[Candidate] = []
    for i in range(1, len(word1) + 1):
        for j in range(len(word2), 0, -1):
            text = word1[:i] + word2[len(word2) - j :]
            if len(text) >= min_length and text not in seen:
                seen.add(text)
                out.append(Candidate(text, i, j))
    return out


def match_case(text: str, word1: str, word2: str) -> str:
    """Capitalise ``text`` the way the inputs are: ``Brad Angelina`` -> ``Brangelina``."""
    if word1.isupper() and word2.isupper() and len(word1) > 1:
        return text.upper()
    if word1[:1].isupper():
        return text[:1].upper() + text[1:]
    return text


def check_word(raw: str, alphabet: Alphabet, where: str = "") -> str:
    """``raw`` case- and accent-folded (Beyoncé -> beyonce), or a clear error."""
    try:
        word = alphabet.fold_checked(raw.strip())
    except OutsideAlphabet as exc:
        raise CharlstmError(f"{where}{raw!r} has {exc.letters()}") from None
    if not word:
        raise CharlstmError(f"{where}cannot blend an empty word")
    if len(word) > MAX_WORD_LENGTH:
        raise CharlstmError(f"{where}{raw[:20]!r}... is longer than {MAX_WORD_LENGTH} letters")
    return word


@dataclass(frozen=True)
class Weights:
    """A fitted linear score: ``sum(weight * (feature - mean) / scale)``."""

    features: tuple[str, ...]
    weight: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Scores for a [candidates, len(FEATURES)] matrix."""
        return ((matrix - self.mean) / self.scale) @ self.weight

    @classmethod
    def load(cls, path: str | Path = WEIGHTS_FILE) -> Weights:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            names = tuple(data["features"])
            if set(names) - set(FEATURES):
                raise ValueError(f"unknown features {sorted(set(names) - set(FEATURES))}")
            arrays = {k: np.zeros(len(FEATURES)) for k in ("weight", "mean")}
            arrays["scale"] = np.ones(len(FEATURES))
            for k in arrays:
                values = dict(zip(names, data[k], strict=True))
                arrays[k] = np.array([values.get(f, arrays[k][i]) for i, f in enumerate(FEATURES)])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CharlstmError(f"{path}: unreadable blend weights ({exc})") from exc
        return cls(FEATURES, arrays["weight"], arrays["mean"], arrays["scale"])


class Blender:
    """Ranks blends with a names LM, a words LM and fitted weights."""

    def __init__(
        self, names_lm: NumpyLSTM, words_lm: NumpyLSTM, alphabet: Alphabet, weights: Weights | None = None
    ) -> None:
        self.lms = {"names": names_lm, "words": words_lm}
        self.alphabet = alphabet
        self.weights = weights or Weights.load()

    @classmethod
    def open(cls, names: ModelDir, words: ModelDir) -> Blender:
        """A blender over two opened model directories, with the shipped weights."""
        if names.alphabet != words.alphabet:
            raise CharlstmError(
                f"{names.path} and {words.path} use different alphabets; cannot blend with both"
            )
        return cls(names.lm(), words.lm(), names.alphabet)

    def features(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[list[Candidate]], np.ndarray]:
        """Candidates of each (folded) pair and their stacked feature matrix."""
        cands = [candidates(w1, w2) for w1, w2 in pairs]
        splits = [[(c.prefix, c.suffix) for c in cs] for cs in cands]
        return cands, feature_matrix(self.needed_lms(), self.alphabet, pairs, splits)

    def needed_lms(self) -> dict[str, NumpyLSTM]:
        """The LMs with a feature of non-zero weight (all of them when the weights are zero)."""
        used = {f.split("_")[0] for f, w in zip(FEATURES, self.weights.weight, strict=True) if w != 0}
        return {name: lm for name, lm in self.lms.items() if name in used} or dict(self.lms)

    def rank(
        self, pairs: Sequence[tuple[str, str]], top: int = BLEND.top, both_orders: bool = False
    ) -> list[list[Blend]]:
        """The ``top`` best blends of each (raw) pair, best first, capitalised like the input.

        Scores are probabilities among each pair's candidates. ``both_orders`` also
        tries word2 + word1. Pairs are scored ``CHUNK_PAIRS`` at a time.
        """
        check_option("top", top, BlendOptions)
        folded = [(check_word(w1, self.alphabet), check_word(w2, self.alphabet)) for w1, w2 in pairs]
        results: list[list[Blend]] = []
        for start in range(0, len(pairs), CHUNK_PAIRS):
            chunk = folded[start : start + CHUNK_PAIRS]
            work = chunk + [(w2, w1) for w1, w2 in chunk] if both_orders else chunk
            cands, matrix = self.features(work)
            scores = self.weights.score(matrix)
            offsets = np.cumsum([0] + [len(c) for c in cands])
            for k, (raw1, raw2) in enumerate(pairs[start : start + CHUNK_PAIRS]):
                groups = [k, k + len(chunk)] if both_orders else [k]
                texts = [c.blend for g in groups for c in cands[g]]
                s = np.concatenate([scores[offsets[g] : offsets[g + 1]] for g in groups])
                results.append(_best(texts, s, top, raw1, raw2))
        return results

    def evaluate(self, rows: Sequence[Sequence[str]], both_orders: bool = False) -> EvalResult:
        """Exact@1/3/10 and mean Levenshtein of the top answer over (word1, word2, gold) rows."""
        folded = [[check_word(word, self.alphabet) for word in row[:3]] for row in rows]
        pairs = [(w1, w2) for w1, w2, _ in folded]
        gold = [g for _, _, g in folded]
        ranked = self.rank(pairs, top=max(EXACT_AT), both_orders=both_orders)
        return evaluate_ranked([[b.blend for b in r] for r in ranked], gold)


def _best(texts: list[str], scores: np.ndarray, top: int, raw1: str, raw2: str) -> list[Blend]:
    """The ``top`` distinct texts by score, with their softmax probabilities."""
    if not texts:
        raise CharlstmError(f"{raw1!r} and {raw2!r} give no blend")
    probs = np.exp(scores - scores.max())
    order = np.argsort(-scores, kind="stable")
    total = probs.sum()
    best: list[Blend] = []
    seen: set[str] = set()
    for i in order:  # with both orders a text may come twice; its best score counts
        if texts[i] not in seen:
            seen.add(texts[i])
            best.append(Blend(match_case(texts[i], raw1, raw2), float(probs[i] / total)))
            if len(best) == top:
                break
    return best


def levenshtein(x: str, y: str) -> int:
    """Edit distance (insertions, deletions, substitutions) between two strings."""
    previous = list(range(len(y) + 1))
    for i, cx in enumerate(x, 1):
        current = [i]
        for j, cy in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (cx != cy)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class EvalResult:
    rows: int
    exact: dict[int, float]  # k -> fraction of rows whose gold is in the top k
    levenshtein: float  # mean edit distance of the top answer to the gold

    def to_json(self) -> dict:
        return {
            "rows": self.rows,
            **{f"exact@{k}": round(v, 4) for k, v in self.exact.items()},
            "avg_levenshtein": round(self.levenshtein, 4),
        }


def evaluate_ranked(
    ranked: Sequence[Sequence[str]], gold: Sequence[str], ks: Iterable[int] = EXACT_AT
) -> EvalResult:
    """Exact@k and mean Levenshtein of the top answer for ranked candidate lists."""
    n = len(gold)
    if n == 0:
        raise CharlstmError("nothing to evaluate: no rows")
    exact = {k: sum(g in list(r)[:k] for r, g in zip(ranked, gold, strict=True)) / n for k in ks}
    dist = sum(levenshtein(r[0] if r else "", g) for r, g in zip(ranked, gold, strict=True)) / n
    return EvalResult(n, exact, dist)


def read_pairs(
    lines: Iterable[str], source: str, alphabet: Alphabet, columns: int = 2
) -> list[tuple[str, ...]]:
    """Rows of ``columns`` words split on tabs or spaces, each checked with :func:`check_word`.

    Blank lines are skipped and extra columns ignored; errors name the line, or the
    source if it is not UTF-8.
    """
    rows = []
    try:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < columns:
                raise CharlstmError(f"{source}:{number}: expected {columns} words, found {len(fields)}")
            for field in fields[:columns]:
                check_word(field, alphabet, where=f"{source}:{number}: ")
            rows.append(tuple(fields[:columns]))
    except UnicodeDecodeError as exc:
        raise CharlstmError(f"{source}: not UTF-8 text ({exc.reason})") from None
    return rows
