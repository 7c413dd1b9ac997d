"""Features of blend candidates: how each is put together and how likely the LMs find it.

A candidate ``c`` of ``word1`` and ``word2`` keeps a prefix of word1 and a suffix of
word2. Its structure is read from the string itself, whatever split produced it:
``a``, the longest common prefix of ``c`` and word1, and ``b``, the longest common
suffix of ``c`` and word2. Letters counted in both (``a + b - len(c)``) are the
overlap at the join (Brad + Angelina -> Br[a]ngelina shares the ``a``).

Every language model scores all candidates of many pairs in one batched pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from charlstm.alphabet import Alphabet
from charlstm.npmodel import NumpyLSTM, log_softmax

VOWELS = frozenset("aeiouy")

STRUCTURE = (
    "overlap",  # letters at the join that belong to both words
    "has_overlap",  # 1 if overlap > 0
    "kept1",  # fraction of word1 kept (a / len(word1))
    "kept2",  # fraction of word2 kept (b / len(word2))
    "whole1",  # 1 if all of word1 is kept
    "whole2",  # 1 if all of word2 is kept
    "only1",  # letters that come from word1 alone, over len(c)
    "len_ratio",  # len(c) / (len(word1) + len(word2))
    "len_max_ratio",  # len(c) / max(len(word1), len(word2))
    "log_len",  # log len(c)
    "cut1_vowel",  # last letter kept of word1 is a vowel
    "drop1_vowel",  # first letter dropped from word1 is a vowel
    "start2_vowel",  # first letter kept of word2 is a vowel
    "dropped2_vowel",  # last letter dropped from word2 is a vowel
    "join_same_class",  # the letters either side of the join are both vowels or both consonants
    "dropped1",  # letters of word1 left out
    "dropped2",  # letters of word2 left out
    "kept1_sq",  # kept1 squared, kept2 squared, len_ratio squared: let a middle value win
    "kept2_sq",
    "len_ratio_sq",
    "one_letter1",  # only the first letter of word1 is kept
    "one_letter2",  # only the last letter of word2 is kept
    "two_letters2",  # at most the last two letters of word2 are kept
    "onset1",  # word1's part can be its onset, the letters before its first vowel (Br-itain)
    "rime2",  # word2's part can be all of it from its first vowel on (l-izard)
    "onset_rime",  # both at once: onset of word1 + rest of word2 (Br + exit, Sm + og)
)
# Which letters meet at each cut: word1 is cut after its kept part, word2 before its
# kept part. A cut between a vowel and a stop reads differently from one that splits
# a consonant cluster, so the class of the letter on either side of each cut is a
# one-hot feature (8 x 8 for each word).
LETTER_CLASSES = ("vowel", "y", "liquid", "nasal", "stop", "fricative", "other", "edge")
_CLASS_LETTERS = {
    "vowel": "aeiou",
    "y": "y",
    "liquid": "lr",
    "nasal": "mn",
    "stop": "bcdgkpqt",
    "fricative": "fhjsvxz",
}  # "other": w and any letter outside a-z; "edge": before the start or after the end
CUTS = tuple(
    f"cut{word}_{left}_{right}" for word in (1, 2) for left in LETTER_CLASSES for right in LETTER_CLASSES
)
LM_PARTS = (
    "sum",  # total log-probability (end marker included)
    "mean",  # mean log-probability per predicted symbol
    "join",  # log-probability of the first letter after the part of word1
    "suffix_gain",  # log-prob of word2's part in the blend minus in word2 itself
)
LM_NAMES = ("names", "words")
FEATURES = STRUCTURE + CUTS + tuple(f"{lm}_{part}" for lm in LM_NAMES for part in LM_PARTS)


def _common_runs(word1: str, word2: str) -> tuple[list[list[int]], list[list[int]]]:
    """``ahead[x][y]``: common prefix of word1[x:] and word2[y:];
    ``behind[x][y]``: common suffix of word1[:x] and word2[:y]."""
    n1, n2 = len(word1), len(word2)
    ahead = [[0] * (n2 + 1) for _ in range(n1 + 1)]
    behind = [[0] * (n2 + 1) for _ in range(n1 + 1)]
    for x in range(n1 - 1, -1, -1):
        for y in range(n2 - 1, -1, -1):
            if word1[x] == word2[y]:
                ahead[x][y] = ahead[x + 1][y + 1] + 1
    for x in range(1, n1 + 1):
        for y in range(1, n2 + 1):
            if word1[x - 1] == word2[y - 1]:
                behind[x][y] = behind[x - 1][y - 1] + 1
    return ahead, behind


class CandidateTable:
    """Every candidate of many pairs as flat arrays: its pair, split and structure.

    Candidate ``k`` is ``word1[:i[k]] + word2[n2 - j[k]:]`` of pair ``pair[k]``;
    ``a`` and ``b`` are its longest common prefix with word1 and suffix with word2,
    each capped so that at least one letter is left to the other word.
    """

    def __init__(
        self,
        alphabet: Alphabet,
        words: Sequence[tuple[str, str]],
        splits: Sequence[Sequence[tuple[int, int]]],
    ) -> None:
        self.words = list(words)
        i, j, a, b = [], [], [], []
        for (w1, w2), pair_splits in zip(words, splits, strict=True):
            ahead, behind = _common_runs(w1, w2)
            n2 = len(w2)
            for x, y in pair_splits:
                i.append(x)
                j.append(y)
                a.append(x + ahead[x][n2 - y])
                b.append(y + behind[x][n2 - y])
        self.pair = np.repeat(np.arange(len(words)), [len(s) for s in splits])
        self.i, self.j = np.array(i, np.int64), np.array(j, np.int64)
        self.length = self.i + self.j
        self.a = np.minimum(np.array(a, np.int64), self.length - 1)
        self.b = np.minimum(np.array(b, np.int64), self.length - 1)
        self.n1 = np.array([len(w1) for w1, _ in words], np.int64)
        self.n2 = np.array([len(w2) for _, w2 in words], np.int64)
        self.onset1 = np.array([_onset(w1) for w1, _ in words], np.int64)
        self.onset2 = np.array([_onset(w2) for _, w2 in words], np.int64)
        # Each word as ids, padded with the end marker (id 0) after its last letter.
        self.ids1 = _padded([alphabet.encode_letters(w1) for w1, _ in words])
        self.ids2 = _padded([alphabet.encode_letters(w2) for _, w2 in words])

    def __len__(self) -> int:
        return len(self.i)


def _onset(word: str) -> int:
    """Letters before the first vowel (``y`` counts as one after the first letter)."""
    for k, ch in enumerate(word):
        if ch in "aeiou" or (ch == "y" and k > 0):
            return k
    return len(word)


def _padded(rows: list[list[int]]) -> np.ndarray:
    width = max(len(r) for r in rows) + 1
    out = np.zeros((len(rows), width), np.int64)
    for k, r in enumerate(rows):
        out[k, : len(r)] = r
    return out


def structure(joins: CandidateTable, alphabet: Alphabet) -> np.ndarray:
    """The :data:`STRUCTURE` features: [candidates, len(STRUCTURE)]."""
    vowel = np.zeros(len(alphabet), bool)
    vowel[[alphabet.symbols.index(v) for v in VOWELS if v in alphabet.symbols]] = True
    p, a, b, length = joins.pair, joins.a, joins.b, joins.length
    n1, n2 = joins.n1[p], joins.n2[p]
    v1, v2 = vowel[joins.ids1[p]], vowel[joins.ids2[p]]  # [candidates, width]

    def at(v: np.ndarray, index: np.ndarray, valid: np.ndarray | bool = True) -> np.ndarray:
        index = np.clip(index, 0, v.shape[1] - 1)
        return (np.take_along_axis(v, index[:, None], axis=1)[:, 0] & valid).astype(np.float64)

    overlap = np.maximum(0, a + b - length)
    start2 = n2 - b  # where word2's kept part starts in word2
    left = at(v1, length - b - 1)  # blend[length - b - 1], the last letter of word1's part
    right = at(v2, n2 - length + a)  # blend[a], the first letter after word1's part
    o1, r2 = joins.onset1[p], n2 - joins.onset2[p]  # onset of word1, rime of word2
    onset1 = (o1 >= 1) & (length - b <= o1) & (o1 <= a)
    rime2 = (r2 >= 1) & (length - a <= r2) & (r2 <= b)
    return np.column_stack(
        [
            overlap,
            overlap > 0,
            a / n1,
            b / n2,
            a == n1,
            b == n2,
            (length - b) / length,
            length / (n1 + n2),
            length / np.maximum(n1, n2),
            np.log(length),
            at(v1, a - 1),
            at(v1, a, a < n1),
            at(v2, start2),
            at(v2, start2 - 1, start2 >= 1),
            left == right,
            n1 - a,
            n2 - b,
            (a / n1) ** 2,
            (b / n2) ** 2,
            (length / (n1 + n2)) ** 2,
            a == 1,
            b == 1,
            b <= 2,
            onset1,
            rime2,
            onset1 & rime2 & (o1 + r2 == length),
        ]
    ).astype(np.float64)


def _letter_classes(alphabet: Alphabet) -> np.ndarray:
    """The :data:`LETTER_CLASSES` index of each symbol id (the end marker is an edge)."""
    index = {ch: LETTER_CLASSES.index(name) for name, letters in _CLASS_LETTERS.items() for ch in letters}
    other, edge = LETTER_CLASSES.index("other"), LETTER_CLASSES.index("edge")
    out = np.array([index.get(ch, other) for ch in alphabet.symbols], np.int64)
    out[0] = edge  # the end-of-name marker
    return out


def cuts(joins: CandidateTable, alphabet: Alphabet) -> np.ndarray:
    """The :data:`CUTS` features, one-hot for each word: [candidates, len(CUTS)]."""
    classes = _letter_classes(alphabet)
    edge, n_classes = LETTER_CLASSES.index("edge"), len(LETTER_CLASSES)
    p, rows = joins.pair, np.arange(len(joins))

    def class_at(ids: np.ndarray, index: np.ndarray) -> np.ndarray:
        inside = index >= 0  # past the end, the padding is the end marker: an edge
        found = classes[ids[p, np.clip(index, 0, ids.shape[1] - 1)]]
        return np.where(inside, found, edge)

    start2 = joins.n2[p] - joins.b  # where word2's kept part starts in word2
    cut1 = class_at(joins.ids1, joins.a - 1) * n_classes + class_at(joins.ids1, joins.a)
    cut2 = class_at(joins.ids2, start2 - 1) * n_classes + class_at(joins.ids2, start2)
    out = np.zeros((len(joins), len(CUTS)))
    out[rows, cut1] = 1.0
    out[rows, n_classes**2 + cut2] = 1.0
    return out


def _run(lm: NumpyLSTM, ids: np.ndarray, state=None) -> tuple[np.ndarray, list]:
    """Feed ``ids`` [batch, time]; log-probs of the next symbol after each step
    [time, batch, vocab] and the state after each step."""
    state = state if state is not None else lm.initial_state(ids.shape[0])
    outputs, states = [], []
    for t in range(ids.shape[1]):
        logits, state = lm.step(ids[:, t], state)
        outputs.append(log_softmax(logits))
        states.append(state)
    return np.stack(outputs), states


def lm_features(lm: NumpyLSTM, joins: CandidateTable) -> np.ndarray:
    """The :data:`LM_PARTS` features of every candidate: [candidates, len(LM_PARTS)].

    The LM reads each word1 once; every candidate then starts from the state after
    its prefix and reads only its suffix, all candidates with the same suffix length
    in one batch.
    """
    n_pairs = len(joins.words)
    rows = np.arange(n_pairs)[:, None]
    start = np.zeros((n_pairs, 1), np.int64)
    # Word1: out1[t] predicts word1[t] after "\n" + word1[:t]; states1[t] follows it.
    out1, states1 = _run(lm, np.hstack([start, joins.ids1]))
    lp1 = out1[np.arange(joins.ids1.shape[1])[None, :], rows, joins.ids1].astype(np.float64)
    cum1 = np.hstack([np.zeros((n_pairs, 1)), np.cumsum(lp1, axis=1)])  # cum1[p, i]: word1[:i]
    prefix_states = [
        (np.stack([s[layer][0] for s in states1]), np.stack([s[layer][1] for s in states1]))
        for layer in range(len(lm.layers))
    ]  # [time, pair, hidden] for each layer
    # Word2 whole, for the log-probability of its own ending.
    out2, _ = _run(lm, np.hstack([start, joins.ids2[:, :-1]]))
    lp2 = out2[np.arange(joins.ids2.shape[1])[None, :], rows, joins.ids2].astype(np.float64)
    cum2 = np.hstack([np.zeros((n_pairs, 1)), np.cumsum(lp2, axis=1)])

    p, i, j, a, b, length = joins.pair, joins.i, joins.j, joins.a, joins.b, joins.length
    n2 = joins.n2[p]
    first = out1[i, p, joins.ids2[p, n2 - j]].astype(np.float64)  # log p(blend[i])
    rest = np.zeros(len(joins))  # log-prob of everything after blend[i], end included
    join = first.copy()
    for width in np.unique(j):
        k = np.flatnonzero(j == width)
        state = [(h[i[k], p[k]], c[i[k], p[k]]) for h, c in prefix_states]
        columns = (n2[k] - width)[:, None] + np.arange(width)[None, :]
        out, _ = _run(lm, joins.ids2[p[k, None], columns], state)
        targets = joins.ids2[p[k, None], columns + 1]
        lp = np.take_along_axis(out.transpose(1, 0, 2), targets[:, :, None], axis=2)[:, :, 0]
        rest[k] = lp.sum(axis=1)
        after = a[k] > i[k]
        join[k[after]] = lp[after, a[k[after]] - i[k[after]] - 1]
    total = cum1[p, i] + first + rest
    w2_part = cum1[p, i] - cum1[p, length - b] + first + rest
    own = cum2[p, n2 + 1] - cum2[p, n2 - b]
    return np.column_stack([total, total / (length + 1), join, w2_part - own])


def feature_matrix(
    lms: dict[str, NumpyLSTM],
    alphabet: Alphabet,
    words: Sequence[tuple[str, str]],
    splits: Sequence[Sequence[tuple[int, int]]],
) -> np.ndarray:
    """All :data:`FEATURES` for every candidate of every pair: [candidates, features].

    ``splits`` holds each pair's candidates as (prefix length, suffix length). The
    features of an LM missing from ``lms`` are left at zero (weights that ignore an
    LM need not run it).
    """
    joins = CandidateTable(alphabet, words, splits)
    parts = [structure(joins, alphabet), cuts(joins, alphabet)]
    for name in LM_NAMES:
        parts.append(lm_features(lms[name], joins) if name in lms else np.zeros((len(joins), len(LM_PARTS))))
    return np.hstack(parts)
