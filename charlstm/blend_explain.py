"""``charlstm blend WORD1 WORD2 --explain``: where each blend's letters come from, and why it ranks.

Notation, for each shown blend::

    Bra(d) + Angelina -> Br[a]ngelina

Each word is written with the letters the blend keeps outside parentheses and the
letters it drops inside them; in the blend, square brackets mark the overlap, letters
that both words supply at the join. The parts follow :class:`charlstm.blend_features.CandidateTable`:
word1's part is the blend's longest common prefix with word1 (``a`` letters), word2's
its longest common suffix with word2 (``b`` letters), and the overlap is ``a + b - len``.

The features that weigh most in a blend's score are those with the largest
``|weight * (value - mean) / scale|``, the terms of :meth:`charlstm.blending.Weights.score`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from charlstm.blend_features import CUTS, FEATURES, LM_NAMES, LM_PARTS, STRUCTURE, CandidateTable
from charlstm.blending import Blender, check_word, match_case
from charlstm.options import BLEND

SHOWN_FEATURES = 3

_STRUCTURE_TEXT = dict(
    zip(
        STRUCTURE,
        (
            "letters at the join shared by both words",
            "the words overlap at the join",
            "fraction of word1 kept",
            "fraction of word2 kept",
            "all of word1 kept",
            "all of word2 kept",
            "share of the blend from word1 alone",
            "blend length / total length of the words",
            "blend length / longer word's length",
            "log of the blend's length",
            "last letter kept of word1 is a vowel",
            "first letter dropped from word1 is a vowel",
            "first letter kept of word2 is a vowel",
            "last letter dropped from word2 is a vowel",
            "letters either side of the join are both vowels or both consonants",
            "letters of word1 left out",
            "letters of word2 left out",
            "fraction of word1 kept, squared",
            "fraction of word2 kept, squared",
            "length ratio, squared",
            "only word1's first letter kept",
            "only word2's last letter kept",
            "at most word2's last two letters kept",
            "word1's part is its onset (letters before the first vowel)",
            "word2's part is its rime (from its first vowel on)",
            "onset of word1 + rime of word2",
        ),
        strict=True,
    )
)
_LM_TEXT = {
    "sum": "total log-probability",
    "mean": "log-probability per symbol",
    "join": "log-probability of the first letter after word1's part",
    "suffix_gain": "word2's part: log-probability in the blend minus in word2",
}


def describe_feature(feature: str) -> str:
    """A short human description of one of :data:`FEATURES`."""
    if feature in _STRUCTURE_TEXT:
        return _STRUCTURE_TEXT[feature]
    if feature in CUTS:  # cut{word}_{left}_{right}
        word, left, right = feature[3], *feature[5:].split("_")
        return f"word{word} cut between {left} | {right}"
    lm, _, part = feature.partition("_")
    if lm in LM_NAMES and part in LM_PARTS:
        return f"{lm} LM: {_LM_TEXT[part]}"
    return feature


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float  # the feature's raw value
    contribution: float  # weight * standardised value

    def to_json(self) -> dict:
        return {
            "feature": self.feature,
            "description": describe_feature(self.feature),
            "value": round(self.value, 6),
            "contribution": round(self.contribution, 6),
        }


@dataclass(frozen=True)
class ExplainedBlend:
    """One ranked blend of ``word1`` + ``word2`` (as the user typed them, in blend order)."""

    blend: str  # capitalised like the input
    score: float  # probability among all candidates, as ``blend`` prints it
    word1: str
    word2: str
    a: int  # blend[:a] comes from word1
    b: int  # blend[len - b:] comes from word2
    features: tuple[Contribution, ...]

    @property
    def overlap(self) -> str:
        return self.blend[len(self.blend) - self.b : self.a]

    @property
    def parts(self) -> str:
        """``Bra(d) + Angelina -> Br[a]ngelina``: kept letters, (dropped), [shared]."""
        n, w1, w2 = len(self.blend), self.word1, self.word2
        first = w1[: self.a] + (f"({w1[self.a :]})" if self.a < len(w1) else "")
        start2 = len(w2) - self.b
        second = (f"({w2[:start2]})" if start2 > 0 else "") + w2[start2:]
        text = self.blend
        if self.overlap:
            text = f"{text[: n - self.b]}[{self.overlap}]{text[self.a :]}"
        return f"{first} + {second} -> {text}"

    def to_json(self) -> dict:
        return {
            "blend": self.blend,
            "score": round(self.score, 6),
            "parts": self.parts,
            "from_word1": self.blend[: self.a],
            "from_word2": self.blend[len(self.blend) - self.b :],
            "overlap": self.overlap,
            "top_features": [c.to_json() for c in self.features],
        }


def explain_blends(
    blender: Blender, word1: str, word2: str, top: int = BLEND.top, both_orders: bool = False
) -> list[ExplainedBlend]:
    """The ``top`` blends that ``blender.rank`` shows for (word1, word2), explained."""
    raw = [(word1, word2), (word2, word1)] if both_orders else [(word1, word2)]
    work = [(check_word(w1, blender.alphabet), check_word(w2, blender.alphabet)) for w1, w2 in raw]
    cands, matrix = blender.features(work)
    weights = blender.weights
    terms = (matrix - weights.mean) / weights.scale * weights.weight  # [candidates, features]
    scores = weights.score(matrix)
    joins = CandidateTable(blender.alphabet, work, [[(c.prefix, c.suffix) for c in cs] for cs in cands])
    texts = [c.blend for cs in cands for c in cs]
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    out: list[ExplainedBlend] = []
    seen: set[str] = set()
    for k in np.argsort(-scores, kind="stable"):  # as Blender.rank: a text's best score counts
        if texts[k] in seen:
            continue
        seen.add(texts[k])
        first, second = raw[int(joins.pair[k])]
        strongest = np.argsort(-np.abs(terms[k]), kind="stable")[:SHOWN_FEATURES]
        out.append(
            ExplainedBlend(
                blend=match_case(texts[k], word1, word2),
                score=float(probs[k]),
                word1=match_case(work[joins.pair[k]][0], first, first),
                word2=match_case(work[joins.pair[k]][1], second, second),
                a=int(joins.a[k]),
                b=int(joins.b[k]),
                features=tuple(
                    Contribution(FEATURES[f], float(matrix[k, f]), float(terms[k, f])) for f in strongest
                ),
            )
        )
        if len(out) == top:
            break
    return out


def format_explained(blends: list[ExplainedBlend]) -> str:
    """Text for ``blend --explain``: each blend and score, its parts, its strongest features."""
    lines = []
    for b in blends:
        lines.append(f"{b.blend}\t{b.score:.6f}\t{b.parts}")
        for c in b.features:
            lines.append(
                f"    {c.contribution:+8.3f}  {c.feature:<18} {describe_feature(c.feature)} = {c.value:.3g}"
            )
    return "\n".join(lines)


def explained_output(
    blender: Blender,
    word1: str,
    word2: str,
    top: int = BLEND.top,
    both_orders: bool = False,
    as_json: bool = False,
) -> str:
    """What ``blend WORD1 WORD2 --explain`` prints: the text, or one JSON object that
    extends ``blend --json``'s with each blend's parts and strongest features."""
    explained = explain_blends(blender, word1, word2, top=top, both_orders=both_orders)
    if not as_json:
        return format_explained(explained)
    return json.dumps({"word1": word1, "word2": word2, "blends": [b.to_json() for b in explained]})
