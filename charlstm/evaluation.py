"""Likelihood of names under a model: per-name scores and corpus NLL per symbol."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

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

    def to_json(self) -> dict:
        return asdict(self)


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


def score_names(lm: NumpyLSTM, alphabet: Alphabet, names: Sequence[str]) -> list[NameScore]:
    """Score normalized names; each predicts len(name) letters plus the end marker."""
    log_probs = lm.sequence_log_probs([alphabet.encode(n) for n in names])
    return [
        NameScore(name, float(lp.sum(dtype=np.float64)), len(lp))
        for name, lp in zip(names, log_probs, strict=False)
    ]


def evaluate_names(lm: NumpyLSTM, alphabet: Alphabet, names: Sequence[str]) -> Evaluation:
    """NLL per predicted symbol over all ``names`` (duplicates count every time)."""
    if not names:
        raise CharlstmError("no names to evaluate")
    scores = score_names(lm, alphabet, names)
    total = -math.fsum(s.log_prob for s in scores)
    symbols = sum(s.symbols for s in scores)
    nll = total / symbols
    return Evaluation(nll, nll / math.log(2), math.exp(nll), len(scores), symbols)
