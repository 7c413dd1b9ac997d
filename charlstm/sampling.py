"""Sampling new names: all at once, one LSTM step per symbol, state carried along.

A round of ``k`` independent samples is drawn as a tree: every distinct prefix is one
row carrying its LSTM state and the number of samples that share it, and at each step
a row's samples split among the next symbols multinomially. This draws exactly the
same distribution as ``k`` separate rows, but common prefixes (most samples start
with one of a few hundred letter pairs) are computed once.

Excluded letters are masked at every step (the rest renormalized), so they are exact.
A suffix S or a contained string C is reached by a proposal instead of by rejection
(see :class:`_ConstrainedSampler`): every stem the tree visits may also *emit* the
name stem + S, a Poisson number of times with mean proportional to the samples on
that stem times the probability of S + end marker after it; so every name ending in S
is expected exactly in proportion to its probability under the sampling process,
however rare S is. C is reached the same way, by letting C-free stems *jump* to
stem + C (at C's first occurrence) and grow on from there.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from charlstm.alphabet import Alphabet, OutsideAlphabet
from charlstm.checkpoint import ModelDir
from charlstm.errors import CharlstmError, OptionError, check_option
from charlstm.npmodel import NumpyLSTM, State, log_softmax
from charlstm.options import GENERATE, MAX_NAME_LENGTH, GenerateOptions

ROUND_SAMPLES = 1 << 18  # samples drawn per round at most
CONSTRAINED_ROUND_SAMPLES = 1 << 15  # the same with a suffix or contains (rounds cost more)
INITIAL_YIELD = 0.5  # first guess of the fraction of samples that are new names
ROUNDS_WITHOUT_NEW = 5  # give up after this many rounds that add no name
ROULETTE = 0.25  # completions expected to emit less than this go on only by chance
STALL_SECONDS = 2.0  # ... or after this much CPU time without a new name (load-independent)
CONSTRAINED_SECONDS = 5.0  # with a suffix or contains, CPU time at most this + 0.5 ms a name


class Sample(NamedTuple):
    """A sampled name, its log-probability under the model (temperature 1) and its tag."""

    name: str
    log_prob: float
    tag: str | None = None


class TagChoice(NamedTuple):
    """A tag to sample under: its name, its id in the model and its share of the names."""

    name: str
    id: int
    weight: float


@dataclass(frozen=True)
class Constraints:
    """What every name must satisfy (normalized letters; empty strings: no constraint)."""

    prefix: str = ""
    suffix: str = ""
    contains: str = ""
    exclude_letters: str = ""
    min_length: int = 1
    max_length: int = MAX_NAME_LENGTH

    def admits(self, name: str) -> bool:
        """Whether ``name`` satisfies every constraint."""
        return (
            self.min_length <= len(name) <= self.max_length
            and name.startswith(self.prefix)
            and name.endswith(self.suffix)
            and self.contains in name
            and not set(self.exclude_letters) & set(name)
        )

    def describe(self) -> str:
        """The constraints for messages, e.g. ``ending in 'xq', without 'e'``."""
        parts = [
            f"{what} {value!r}"
            for what, value in (
                ("starting with", self.prefix),
                ("ending in", self.suffix),
                ("containing", self.contains),
                ("without", self.exclude_letters),
            )
            if value
        ]
        if self.min_length > 1 or self.max_length != MAX_NAME_LENGTH:
            parts.append(f"of {self.min_length}-{self.max_length} letters")
        return ", ".join(parts)


def sample_names(
    lm: NumpyLSTM,
    alphabet: Alphabet,
    n: int,
    *,
    seed: int | None = None,
    temperature: float = GENERATE.temperature,
    top_k: int | None = GENERATE.top_k,
    prefix: str = "",
    suffix: str = "",
    contains: str = "",
    exclude_letters: str = "",
    min_length: int = GENERATE.min_length,
    max_length: int = GENERATE.max_length,
    unique: bool = GENERATE.unique,
    exclude: Collection[str] = (),
) -> list[Sample]:
    """Draw exactly ``n`` names, or raise :class:`CharlstmError` if the constraints
    leave the model unable to produce that many (within a few seconds).

    ``prefix`` is fed to the model first; names end with ``suffix``, contain
    ``contains`` and never use a letter of ``exclude_letters`` (masked at every step);
    all four are folded and checked by the alphabet. The end marker is withheld until
    ``min_length`` letters; names longer than ``max_length`` are discarded; ``exclude``
    names (e.g. the training set) are skipped. The names come in the order an endless
    stream of independent samples would first produce them. An unusable option raises
    :class:`OptionError` naming it, and constraints that no name can meet fail at once.
    """
    _check_settings(n, temperature, top_k, min_length, max_length)
    prefix, suffix, contains, exclude_letters = (
        _fold(alphabet, option, text)
        for option, text in (
            ("prefix", prefix),
            ("suffix", suffix),
            ("contains", contains),
            ("exclude_letters", exclude_letters),
        )
    )
    rules = Constraints(prefix, suffix, contains, exclude_letters, min_length, max_length)
    if rules.contains and (rules.contains in prefix or rules.contains in suffix):
        rules = Constraints(prefix, suffix, "", exclude_letters, min_length, max_length)  # implied
    settings = _settings(lm, alphabet, rules, temperature, top_k)
    draw = _ConstrainedSampler(settings) if rules.suffix or rules.contains else _RoundSampler(settings)
    return _collect(draw, n, np.random.default_rng(seed), unique, set(exclude))


def sample_across_tags(
    lm: NumpyLSTM,
    alphabet: Alphabet,
    n: int,
    choices: Sequence[TagChoice],
    *,
    seed: int | None = None,
    unique: bool = GENERATE.unique,
    exclude: Collection[str] = (),
    **settings,
) -> list[Sample]:
    """``n`` names of a tagged model, drawn across ``choices`` by their weights.

    Each tag's share is multinomial; each share is sampled under its tag with
    :func:`sample_names` (``settings`` are its options) and the names are shuffled
    together. With ``unique`` a name appears once, whatever its tag.
    """
    check_option("count", n, GenerateOptions, label="n")
    rng = np.random.default_rng(seed)
    weights = np.array([c.weight for c in choices], np.float64)
    shares = rng.multinomial(n, weights / weights.sum())
    results: list[Sample] = []
    taken = set(exclude)
    for choice, share in zip(choices, shares, strict=True):
        if not share:
            continue
        try:
            drawn = sample_names(
                lm.under_tag(choice.id), alphabet, int(share), seed=int(rng.integers(2**31)), unique=unique,
                exclude=taken, **settings,
            )  # fmt: skip
        except Shortfall as short:  # say how many of all n names could be found
            found = len(results) + short.found
            raise Shortfall(found, n, unique, short.rules, short.seconds, short.drawn) from None
        results += [s._replace(tag=choice.name) for s in drawn]
        if unique:
            taken.update(s.name for s in drawn)
    return [results[i] for i in rng.permutation(len(results))]


def choose_tags(model: ModelDir, tags: Sequence[str] = ()) -> list[TagChoice]:
    """The tags to sample under, weighted by their training frequencies.

    By default every tag but the family-name tag (first names); else the ``tags`` given
    (an unknown one is an :class:`OptionError` listing the model's tags).
    """
    meta = model.meta
    chosen = list(dict.fromkeys(tags)) or [t for t in meta.tags if t != meta.family_tag] or meta.tags
    ids = model.tag_ids(chosen)
    weights = meta.tag_weights(chosen)
    return [TagChoice(tag, i, weights[tag]) for tag, i in zip(chosen, ids, strict=True)]


def generate(
    model: ModelDir,
    n: int,
    *,
    tags: Sequence[str] = (),
    full: bool = False,
    novel: bool = False,
    seed: int | None = None,
    unique: bool = GENERATE.unique,
    **settings,
) -> list[Sample]:
    """What ``charlstm generate`` prints: ``n`` names of ``model``, tagged or not.

    A tagged model draws across ``tags`` (default: its first-name tags) by their
    frequencies. ``full`` makes "first last" names, the family name from the model's
    family-name tag (the constraints in ``settings`` apply to the first names).
    ``novel`` leaves out the training names. See :func:`sample_names` for the rest.
    """
    exclude = model.novel_exclusions() if novel else ()
    if tags and not model.meta.tags:
        model.require_tags("--tag")
    lm, alphabet = model.lm(), model.alphabet
    if not full and not model.meta.tags:
        return sample_names(lm, alphabet, n, seed=seed, unique=unique, exclude=exclude, **settings)
    if not full:
        choices = choose_tags(model, tags)
        return sample_across_tags(
            lm, alphabet, n, choices, seed=seed, unique=unique, exclude=exclude, **settings
        )
    model.require_tags("--full")
    family = model.meta.family_tag
    if family is None:
        raise CharlstmError(f"--full needs a family-name tag, and {model.path} has none (train --family-tag)")
    rng = np.random.default_rng(seed)
    firsts = sample_across_tags(
        lm, alphabet, n, choose_tags(model, tags), seed=int(rng.integers(2**31)),
        unique=unique, exclude=exclude, **settings,
    )  # fmt: skip
    lasts = sample_across_tags(
        lm, alphabet, n, choose_tags(model, [family]), seed=int(rng.integers(2**31)),
        unique=unique, exclude=exclude, temperature=settings.get("temperature", GENERATE.temperature),
    )  # fmt: skip
    pairs = zip(firsts, lasts, strict=True)
    return [Sample(f"{a.name} {b.name}", a.log_prob + b.log_prob, a.tag) for a, b in pairs]


def _collect(
    draw: _RoundSampler, n: int, rng: np.random.Generator, unique: bool, excluded: set[str]
) -> list[Sample]:
    """Draw rounds until ``n`` names are found, or raise once the search stalls."""
    results: list[Sample] = []
    seen: set[str] = set()
    drawn, fruitless = 0, 0
    start = last_new = time.process_time()
    yield_rate = INITIAL_YIELD if unique else 1.0  # estimated new names per sample drawn
    # Constrained rounds emit ~1 name per sample, often the same likely ones: CPU time
    # bounds them, and only full-size rounds count as fruitless.
    constrained = isinstance(draw, _ConstrainedSampler)
    deadline = start + CONSTRAINED_SECONDS + 5e-4 * n if constrained else np.inf
    while len(results) < n:
        now = time.process_time()
        stalled = now - last_new >= STALL_SECONDS or now >= deadline
        if fruitless >= ROUNDS_WITHOUT_NEW or (drawn >= 200 * n + 20000 and not constrained) or stalled:
            seconds = time.process_time() - start
            raise Shortfall(len(results), n, unique, draw.rules, seconds, drawn)
        want = n - len(results)
        size = min(draw.max_round, int(want / yield_rate * 1.1) + 64)
        drawn += size
        names, log_probs = draw(size, rng, distinct=unique)
        skip = seen | excluded if unique else excluded
        fresh = [i for i, name in enumerate(names) if name not in skip and draw.admits(name)][:want]
        results.extend(Sample(names[i], log_probs[i]) for i in fresh)
        if unique:
            seen.update(names[i] for i in fresh)
        fruitless = 0 if fresh else fruitless + (size >= draw.max_round or not constrained)
        last_new = time.process_time() if fresh else last_new
        yield_rate = _next_yield(yield_rate, len(fresh), size, draw.rate_change, constrained)
    return results


def _next_yield(rate: float, fresh: int, size: int, rate_change: float, constrained: bool) -> float:
    """The estimated new names per sample for the next round."""
    if not fresh and rate_change >= 2:
        return rate  # a pilot round: the next one emits far more names per sample
    if not fresh and constrained:
        return max(rate / 8, 1e-6)  # rare names: grow the rounds quickly (to their cap)
    return min(max(fresh / size * rate_change, 1e-6 if constrained else 1e-3), 1.0)


def _check_settings(n: int, temperature: float, top_k: int | None, min_length: int, max_length: int) -> None:
    """:class:`OptionError` for the first unusable setting."""
    for option, value in zip(
        ("count", "temperature", "top_k", "min_length", "max_length"),
        (n, temperature, top_k, min_length, max_length),
        strict=True,
    ):
        check_option(option, value, GenerateOptions, label="n" if option == "count" else None)
    if max_length < min_length:
        raise OptionError("min_length", f"{min_length} is greater than the maximum length {max_length}")


def _fold(alphabet: Alphabet, option: str, text: str) -> str:
    """``text`` folded by the alphabet; :class:`OptionError` naming ``option`` for foreign letters."""
    try:
        return alphabet.fold_checked(text)
    except OutsideAlphabet as exc:
        raise OptionError(option, exc.letters()) from None


class Shortfall(CharlstmError):
    """The model could not produce ``n`` names under the constraints; ``found`` it did."""

    def __init__(
        self, found: int, n: int, unique: bool, rules: Constraints, seconds: float, drawn: int
    ) -> None:
        self.found, self.n, self.unique, self.rules = found, n, unique, rules
        self.seconds, self.drawn = seconds, drawn
        what = f"{'distinct ' if unique else ''}names"
        if rules.describe():
            what += f" ({rules.describe()})"
        super().__init__(
            f"could only produce {found} of {n} {what} within {seconds:.1f} s of computing, {drawn:,} "
            "samples; relax the constraints or ask for fewer names"
        )


@dataclass
class _Settings:
    """Everything a round sampler needs besides the size and the random generator."""

    lm: NumpyLSTM
    alphabet: Alphabet
    rules: Constraints
    temperature: float
    top_k: int | None
    banned: np.ndarray  # ids of the excluded letters


def _settings(
    lm: NumpyLSTM, alphabet: Alphabet, rules: Constraints, temperature: float, top_k: int | None
) -> _Settings:
    """Check the constraints up front (clear errors for impossible ones) and bundle them."""
    for option, what, letters in (
        ("prefix", "prefix", rules.prefix),
        ("suffix", "suffix", rules.suffix),
        ("contains", "contains-string", rules.contains),
    ):
        if set(letters) & set(rules.exclude_letters):
            used = ", ".join(repr(c) for c in sorted(set(letters) & set(rules.exclude_letters)))
            raise CharlstmError(f"the {what} {letters!r} uses excluded letters: {used}")
        if len(letters) > rules.max_length:
            raise OptionError(
                option, f"the {what} {letters!r} is longer than the maximum length {rules.max_length}"
            )
    if len(set(rules.exclude_letters)) >= len(alphabet) - 1:
        raise CharlstmError("every letter is excluded: no name can be made")
    if not _feasible(rules):
        raise CharlstmError(f"no name of {rules.min_length}-{rules.max_length} letters is {rules.describe()}")
    banned = np.array(sorted(set(alphabet.encode_letters(rules.exclude_letters))), np.intp)
    return _Settings(lm, alphabet, rules, temperature, top_k, banned)


def _feasible(rules: Constraints) -> bool:
    """Whether some string of allowed lengths has the prefix, suffix and contains-string
    at once (free places take any allowed letter: at least one exists)."""
    parts = [rules.prefix, rules.contains, rules.suffix]
    roomy = sum(map(len, parts))
    if rules.max_length >= max(roomy, rules.min_length):
        return True
    for length in range(max(rules.min_length, *map(len, parts)), rules.max_length + 1):
        for offset in range(length - len(rules.contains) + 1):
            slots: list[str | None] = [None] * length
            placed = ((0, rules.prefix), (offset, rules.contains), (length - len(rules.suffix), rules.suffix))
            if all(_place(slots, at, text) for at, text in placed):
                return True
    return False


def _place(slots: list[str | None], at: int, text: str) -> bool:
    """Write ``text`` into ``slots`` from ``at``; False on a clash with what is there."""
    for i, ch in enumerate(text, start=at):
        if slots[i] not in (None, ch):
            return False
        slots[i] = ch
    return True


class _RoundSampler:
    """Draws rounds of independent samples under fixed sampling settings."""

    max_round = ROUND_SAMPLES
    rate_change = 1.0  # next round's expected names per sample / this round's

    def __init__(self, settings: _Settings) -> None:
        lm, alphabet, rules = settings.lm, settings.alphabet, settings.rules
        prefix_ids = alphabet.encode_letters(rules.prefix)
        self.lm = lm
        self.rules = rules
        self.temperature = settings.temperature
        top_k = settings.top_k
        self.top_k = top_k if top_k is not None and top_k < lm.vocab_size else None
        self.banned = settings.banned
        self.min_length = rules.min_length
        self.max_length = rules.max_length
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

    def admits(self, name: str) -> bool:
        """Whether a drawn name meets the constraints (by construction it always does)."""
        return True

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

    def _weights(self, log_p: np.ndarray, position: int) -> np.ndarray:
        """Unnormalized log sampling weights of the next symbols (masked, top-k, tempered)."""
        weights = log_p.astype(np.float64)
        if position < self.min_length:
            weights[:, 0] = -np.inf
        if len(self.banned):
            weights[:, self.banned] = -np.inf
        if self.top_k is not None:
            kth = np.partition(weights, -self.top_k, axis=1)[:, -self.top_k, None]
            weights[weights < kth] = -np.inf
        # Shift the likeliest allowed symbol to 0 before tempering: however small the
        # temperature, it keeps probability 1 rather than 0 / 0.
        weights -= weights.max(axis=1, keepdims=True)
        if self.temperature != 1:
            weights /= self.temperature
        return weights

    def _log_weights(self, log_p: np.ndarray, position: int) -> np.ndarray:
        """Normalized log sampling probabilities of the next symbols."""
        weights = self._weights(log_p, position)
        return weights - np.log(np.exp(weights).sum(axis=1, keepdims=True))

    def _split(
        self, log_p: np.ndarray, counts: np.ndarray, position: int, rng: np.random.Generator
    ) -> np.ndarray:
        """How each row's samples divide among the next symbols: [rows, vocab] counts."""
        probs = np.exp(self._weights(log_p, position))
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


@dataclass
class _Rows:
    """Tree rows at one position: distinct stems, their LSTM state and sample counts."""

    letters: np.ndarray  # [rows, position] symbol ids of each stem
    ids: np.ndarray  # the symbol to feed next (the stem's last, or the end marker)
    state: State
    counts: np.ndarray  # samples on each stem
    log_prob: np.ndarray  # the model's log-probability of each stem (temperature 1)
    match: np.ndarray  # contains-matcher state; == len(contains) once a stem holds it

    @staticmethod
    def concat(parts: list[_Rows]) -> _Rows:
        if len(parts) == 1:
            return parts[0]
        state = [
            (np.concatenate([p.state[k][0] for p in parts]), np.concatenate([p.state[k][1] for p in parts]))
            for k in range(len(parts[0].state))
        ]
        fields = [np.concatenate([getattr(p, f) for p in parts]) for f in ("letters", "ids")]
        rest = [np.concatenate([getattr(p, f) for p in parts]) for f in ("counts", "log_prob", "match")]
        return _Rows(*fields, state, *rest)


class _Matcher:
    """A string-matching automaton (Knuth-Morris-Pratt) for the contains-string.

    State ``s`` means the stem ends with the string's first ``s`` symbols; state
    ``len(pattern)`` (absorbing) means the stem contains it (every stem contains ``""``).
    """

    def __init__(self, pattern: list[int], vocab: int, suffix: list[int]) -> None:
        m = len(pattern)
        self.full = m
        self.delta = np.zeros((m + 1, vocab), np.intp)
        border = 0  # longest proper border of pattern[:state]
        for state in range(m):
            if state:
                self.delta[state] = self.delta[border]
            self.delta[state, pattern[state]] = state + 1
            if state:
                border = self.delta[border, pattern[state]]
        self.delta[m] = m
        # Jumping from a stem in state s to stem + pattern finds the pattern first at the end?
        self.first_at_end = np.array([self._run(s, pattern[:-1]) < m for s in range(m + 1)])
        # Does stem + suffix hold the pattern, from a stem in state s?
        self.via_suffix = np.array([self._run(s, suffix) == m for s in range(m + 1)])

    def _run(self, state: int, symbols: list[int]) -> int:
        for symbol in symbols:
            state = int(self.delta[state, symbol])
        return state


class _ConstrainedSampler(_RoundSampler):
    """Rounds of names ending in a suffix S and/or containing a string C.

    The tree grows from the empty stem (the prefix is forced) as in the plain sampler.
    At each position every eligible stem emits ``stem + S`` a Poisson number of times,
    with mean ``scale_s x samples on the stem x Q(S, end | stem)`` (Q: the sampling
    process, masking and temperature included), so each name ending in S is expected
    ``scale_s x N x Q(name)`` times; its own end markers are dropped. For C, stems that
    do not hold C yet *jump* to ``stem + C`` (only where that is C's first occurrence)
    a Poisson number of times with mean ``scale_c x samples x Q(C | stem)``; stems that
    come to hold C by themselves are dropped, so each name is reached once, through its
    first occurrence of C. Jumped stems grow on and end (C alone) or emit S. Names whose
    C overlaps S are emitted by C-free stems at ``scale_c`` times the rate, which keeps
    every name at the same expected multiple of its probability. Stems shorter than the
    prefix (``P[:j]``) count ``Q(P[:j]) / Q(P)`` as many samples (the prefix conditions).
    The scales adapt between rounds to about one emitted name per sample. Completions
    unlikely to emit are pruned by Russian roulette (see :meth:`_follow`).
    """

    max_round = CONSTRAINED_ROUND_SAMPLES

    def __init__(self, settings: _Settings) -> None:
        super().__init__(settings)
        alphabet, rules = settings.alphabet, self.rules
        self.prefix = alphabet.encode_letters(rules.prefix)
        self.suffix = alphabet.encode_letters(rules.suffix)
        self.contains = alphabet.encode_letters(rules.contains)
        self.matcher = _Matcher(self.contains, self.lm.vocab_size, self.suffix)
        self.scale_s = self.scale_c = 1.0
        self.rate_change = 1.0
        self.calibrated = False  # the scales fit once a round expected some emissions
        # Where each kind of stem stops being useful: C-holding stems must still fit S.
        self.last_held = self.max_length - len(self.suffix)
        self.last_free = max(
            self.last_held - len(self.contains) if self.contains else -1,
            self.max_length - len(self.suffix) if self.suffix else -1,
        )
        self.prefix_mass = self._prefix_mass()

    def admits(self, name: str) -> bool:
        return self.rules.admits(name)

    def _completes_prefix(self, position: int, symbols: list[int]) -> bool:
        """Whether stem + ``symbols`` can start with the prefix: always for stems that
        hold it; a shorter stem ``P[:position]`` needs ``symbols`` to finish it."""
        done = len(self.prefix) - position
        return done <= 0 or self.prefix[position:] == symbols[:done]

    def _prefix_mass(self) -> np.ndarray:
        """Q(P[:j]) / Q(P) for j = 0..len(P): the weight of stems shorter than the prefix."""
        state, ids = self.lm.initial_state(1), np.zeros(1, np.intp)
        log_q = [0.0]
        for j, symbol in enumerate(self.prefix):
            logits, state = self.lm.step(ids, state)
            log_q.append(log_q[-1] + float(self._log_weights(log_softmax(logits), j)[0, symbol]))
            ids = np.full(1, symbol, np.intp)
        if not np.isfinite(log_q[-1]):  # a prefix the settings would never sample: no shortcuts
            return np.r_[np.zeros(len(self.prefix)), 1.0]
        return np.exp(np.array(log_q) - log_q[-1])

    def _tree(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Emit names for ``size`` tree samples; return each distinct name, its count and log-prob."""
        dtype = np.min_scalar_type(len(self.chars))
        rows = _Rows(
            np.zeros((1, 0), dtype), np.zeros(1, np.intp), self.lm.initial_state(1),
            np.array([size], np.int64), np.zeros(1), np.zeros(1, np.intp),
        )  # fmt: skip
        pending: dict[int, list[_Rows]] = {}
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        expected_s = expected_c = 0.0
        for position in range(self.max_length + 1):
            parts = ([rows] if len(rows.ids) else []) + pending.pop(position, [])
            if not parts:
                if not pending:
                    break
                continue
            rows = _Rows.concat(parts)
            logits, rows.state = self.lm.step(rows.ids, rows.state)
            log_p = log_softmax(logits)
            log_w = self._log_weights(log_p, position)
            mass = rows.counts * self.prefix_mass[min(position, len(self.prefix))]
            if self.suffix:
                expected_s += self._emit(rows, position, log_p, log_w, mass, rng, out)
            if self.contains:
                expected_c += self._jump(rows, position, log_p, log_w, mass, rng, pending)
            rows = self._grow(rows, position, log_p, rng, out)
        self._adapt(size, expected_s, expected_c)
        if not out:
            return np.array([], "U1"), np.array([], np.int64), np.array([])
        return tuple(np.concatenate(column) for column in zip(*out, strict=True))

    def _adapt(self, size: int, expected_s: float, expected_c: float) -> None:
        """Scale the next round to about one emitted name (or jump) per sample."""
        change_c = size / expected_c if expected_c > 0 else 1.0
        self.scale_c *= change_c
        change_s = size / (expected_s * change_c) if expected_s > 0 else 1.0
        self.scale_s *= change_s
        expected = expected_s if self.suffix else expected_c
        self.rate_change = size / expected if expected > 0 else 1.0
        self.calibrated |= expected > 0

    def _follow(
        self, rows: _Rows, index: np.ndarray, weight: np.ndarray, symbols: list[int], log_p: np.ndarray,
        log_w: np.ndarray, position: int, end: bool, rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, State]:  # fmt: skip
        """Sampling and model log-probs of ``symbols`` (then the end marker if ``end``)
        after the stems ``index``, and the state after feeding all but the last symbol.

        ``weight`` times the probability so far bounds a row's expected emissions; rows
        whose bound falls below :data:`ROULETTE` go on with probability bound / ROULETTE
        and, if they do, count 1 / that probability more (Russian roulette: expectations
        stay exact, and unlikely completions stop early). Returns the surviving rows'
        positions in ``index``, their (compensated) sampling log-probs, model log-probs
        and state.
        """
        kept = np.arange(len(index))
        log_q = log_w[index, symbols[0]]
        log_m = log_p[index, symbols[0]].astype(np.float64)
        state = [(h[index], c[index]) for h, c in rows.state]
        targets = [*symbols[1:], 0] if end else symbols[1:]
        for i, target in enumerate(targets, start=1):
            log_bound = np.log(weight[kept]) + log_q - np.log(ROULETTE)
            low = log_bound < 0
            if self.calibrated and low.any():  # (scales of 1 would prune nearly everything)
                survive = ~low | (rng.random(len(kept)) < np.exp(np.minimum(log_bound, 0)))
                boost = np.where(low, -log_bound, 0.0)[survive]  # log of 1 / survival probability
                log_q, kept, log_m = log_q[survive] + boost, kept[survive], log_m[survive]
                state = [(h[survive], c[survive]) for h, c in state]
            logits, state = self.lm.step(np.full(len(kept), symbols[i - 1], np.intp), state)
            step_p = log_softmax(logits)
            log_q = log_q + self._log_weights(step_p, position + i)[:, target]
            log_m = log_m + step_p[:, target]
        return kept, log_q, log_m, state

    def _emit(
        self, rows: _Rows, position: int, log_p: np.ndarray, log_w: np.ndarray, mass: np.ndarray,
        rng: np.random.Generator, out: list,
    ) -> float:  # fmt: skip
        """Emit stem + suffix from eligible stems; return the expected number emitted."""
        end = position + len(self.suffix)
        if not self.min_length <= end <= self.max_length:
            return 0.0
        if not self._completes_prefix(position, self.suffix):
            return 0.0
        eligible = np.isfinite(log_w[:, self.suffix[0]]) & (mass > 0)
        held = rows.match == self.matcher.full
        eligible &= held | self.matcher.via_suffix[rows.match]
        factor = np.where(held, 1.0, self.scale_c)  # see the class docstring
        index = np.flatnonzero(eligible)
        if not len(index):
            return 0.0
        weight = self.scale_s * factor[index] * mass[index]
        kept, log_q, log_m, _ = self._follow(
            rows, index, weight, self.suffix, log_p, log_w, position, True, rng
        )
        index, rate = index[kept], weight[kept] * np.exp(log_q)
        emitted = rng.poisson(rate)
        keep = np.flatnonzero(emitted)
        if len(keep):
            letters = _append(rows.letters[index[keep]], self.suffix)
            names = self.chars[letters].view(f"U{end}").ravel()
            out.append((names, emitted[keep], rows.log_prob[index[keep]] + log_m[keep]))
        return float(rate.sum())

    def _jump(
        self, rows: _Rows, position: int, log_p: np.ndarray, log_w: np.ndarray, mass: np.ndarray,
        rng: np.random.Generator, pending: dict[int, list[_Rows]],
    ) -> float:  # fmt: skip
        """Send samples of C-free stems to stem + C; return the expected number sent."""
        matcher, contains = self.matcher, self.contains
        entry = position + len(contains)
        if entry > self.last_held:
            return 0.0
        if not self._completes_prefix(position, contains):
            return 0.0
        eligible = (rows.match < matcher.full) & matcher.first_at_end[rows.match]
        eligible &= np.isfinite(log_w[:, contains[0]]) & (mass > 0)
        index = np.flatnonzero(eligible)
        if not len(index):
            return 0.0
        weight = self.scale_c * mass[index]
        kept, log_q, log_m, state = self._follow(
            rows, index, weight, contains, log_p, log_w, position, False, rng
        )
        index, rate = index[kept], weight[kept] * np.exp(log_q)
        sent = rng.poisson(rate)
        keep = np.flatnonzero(sent)
        if len(keep):
            jumped = _Rows(
                _append(rows.letters[index[keep]], contains),
                np.full(len(keep), contains[-1], np.intp),
                [(h[keep], c[keep]) for h, c in state],
                sent[keep].astype(np.int64),
                rows.log_prob[index[keep]] + log_m[keep],
                np.full(len(keep), matcher.full, np.intp),
            )
            pending.setdefault(entry, []).append(jumped)
        return float(rate.sum())

    def _grow(
        self, rows: _Rows, position: int, log_p: np.ndarray, rng: np.random.Generator, out: list
    ) -> _Rows:
        """Split each stem's samples among the next symbols; keep the stems still useful."""
        if position < len(self.prefix):  # forced: every sample takes the prefix's next letter
            children = np.zeros(log_p.shape, np.int64)
            children[:, self.prefix[position]] = rows.counts
        else:
            children = self._split(log_p, rows.counts, position, rng)
        held = rows.match == self.matcher.full
        if not self.suffix:  # C alone: names that hold C end here by themselves
            ended = np.flatnonzero(children[:, 0] * held)
            if len(ended):
                names = self.chars[rows.letters[ended]].view(f"U{position}").ravel()
                out.append((names, children[ended, 0], rows.log_prob[ended] + log_p[ended, 0]))
        parent, symbols = np.nonzero(children[:, 1:])
        symbols += 1
        match = self.matcher.delta[rows.match[parent], symbols]
        was_held = held[parent]
        last = np.where(was_held, self.last_held, self.last_free)
        # A C-free stem that comes to hold C by itself is dropped: its names come by a jump.
        keep = (position + 1 <= last) & (was_held | (match < self.matcher.full))
        parent, symbols, match = parent[keep], symbols[keep], match[keep]
        letters = np.empty((len(parent), position + 1), rows.letters.dtype)
        letters[:, :position] = rows.letters[parent]
        letters[:, position] = symbols
        return _Rows(
            letters, symbols, [(h[parent], c[parent]) for h, c in rows.state],
            children[parent, symbols], rows.log_prob[parent] + log_p[parent, symbols], match,
        )  # fmt: skip


def _append(letters: np.ndarray, symbols: list[int]) -> np.ndarray:
    """Each row of ``letters`` followed by ``symbols``, as a new C-ordered array."""
    grown = np.empty((len(letters), letters.shape[1] + len(symbols)), letters.dtype)
    grown[:, : letters.shape[1]] = letters
    grown[:, letters.shape[1] :] = symbols
    return grown


def _categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of normalized probabilities (inverse CDF)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((len(cdf), 1)) * cdf[:, -1:]
    # The first symbol whose cumulative probability exceeds u: never a zero-probability one.
    return np.minimum((cdf <= u).sum(axis=1), probs.shape[1] - 1)
