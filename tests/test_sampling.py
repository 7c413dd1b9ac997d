"""`charlstm generate`: every option, bad values, reproducibility, speed-critical paths."""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import write_random_model
from hypothesis import given, settings
from hypothesis import strategies as st

from charlstm.alphabet import Alphabet
from charlstm.checkpoint import NAMES_FILE, bundled_model_dir, open_model
from charlstm.cli import cli
from charlstm.errors import CharlstmError
from charlstm.evaluation import score_names
from charlstm.npmodel import log_softmax
from charlstm.sampling import Sample, sample_names


def first_names(model) -> object:
    """The numpy LM of a model; of the bundled (tagged) model, its female first names."""
    lm = model.lm()
    return lm.under_tag(model.meta.tags.index("female")) if model.meta.tags else lm


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def generate(*args: str) -> list[str]:
    result = run("generate", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_exactly_n_distinct_names_by_default() -> None:
    for n in (1, 7, 500):
        names = generate("--n", str(n), "--seed", "2")
        assert len(names) == n
        assert len(set(names)) == n
        assert all(name.isalpha() and name == name.capitalize() for name in names)


def test_same_seed_same_names_for_every_option() -> None:
    args = ["--n", "40", "--temperature", "1.3", "--top-k", "5", "--prefix", "a", "--json"]
    first = generate(*args, "--seed", "11")
    assert first == generate(*args, "--seed", "11")
    assert first != generate(*args, "--seed", "12")


def test_prefix_is_folded_and_starts_every_name() -> None:
    names = generate("--n", "30", "--prefix", "ZoË", "--seed", "1")
    assert len(names) == 30
    assert all(name.startswith("Zoe") for name in names)


@pytest.mark.parametrize("prefix", ["m4", "an-", "jo ann"])
def test_prefix_outside_alphabet_is_a_usage_error_naming_the_letters(prefix: str) -> None:
    result = run("generate", "--prefix", prefix)
    assert result.exit_code == 2
    bad = next(c for c in prefix if not c.isalpha())
    assert "--prefix" in result.stderr and repr(bad) in result.stderr
    assert "Traceback" not in result.output


def test_length_limits_hold() -> None:
    names = generate("--n", "200", "--min-length", "6", "--max-length", "7", "--seed", "3")
    assert len(names) == 200
    assert all(6 <= len(name) <= 7 for name in names)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--n", "0"], "--n"),
        (["--n", "-5"], "--n"),
        (["--n", "many"], "--n"),
        (["--temperature", "0"], "--temperature"),
        (["--temperature", "-1"], "--temperature"),
        (["--top-k", "0"], "--top-k"),
        (["--min-length", "0"], "--min-length"),
        (["--min-length", "6", "--max-length", "5"], "--min-length"),
        (["--prefix", "abcdef", "--max-length", "5"], "--prefix"),
    ],
)
def test_bad_values_are_usage_errors(args: list[str], option: str) -> None:
    result = run("generate", *args)
    assert result.exit_code == 2, result.output
    assert option in result.stderr
    assert result.stdout == ""


def test_impossible_count_is_a_clear_error_unless_duplicates_allowed() -> None:
    # Only one name of at most 3 letters starts with "abc".
    result = run("generate", "--n", "2", "--prefix", "abc", "--max-length", "3", "--seed", "1")
    assert result.exit_code == 1
    assert "could only produce 1 of 2 distinct names" in result.stderr
    assert "Traceback" not in result.output
    assert generate("--n", "3", "--prefix", "abc", "--max-length", "3", "--allow-duplicates") == ["Abc"] * 3


def test_top_k_one_is_greedy() -> None:
    one = ["--tag", "female"]  # the bundled model is tagged: greedy within one style
    greedy = generate(*one, "--n", "1", "--top-k", "1")
    assert generate(*one, "--n", "1", "--top-k", "1", "--seed", "1") == greedy
    result = run("generate", *one, "--n", "2", "--top-k", "1")
    assert result.exit_code == 1 and "could only produce 1 of 2" in result.stderr


def test_extreme_temperatures_and_lengths_still_give_names() -> None:
    greedy = generate(
        "--tag", "female", "--n", "3", "--temperature", "1e-300", "--min-length", "9", "--allow-duplicates"
    )
    assert len(set(greedy)) == 1 and len(greedy[0]) >= 9
    assert len(generate("--n", "5", "--temperature", "1e300", "--seed", "1")) == 5
    assert len(generate("--n", "5", "--temperature", "3", "--max-length", "1000000", "--seed", "1")) == 5


def test_allow_duplicates_repeats_likely_names() -> None:
    names = generate("--n", "3000", "--allow-duplicates", "--temperature", "0.5", "--seed", "4")
    assert len(names) == 3000
    assert Counter(names).most_common(1)[0][1] > 10


def test_json_lines_carry_the_models_log_probability(random_model_dir: Path) -> None:
    args = ["--model", str(random_model_dir), "--n", "25", "--temperature", "2", "--prefix", "e", "--json"]
    lines = generate(*args)
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 25 and all(set(row) == {"name", "log_prob"} for row in rows)
    model = open_model(random_model_dir)
    scores = score_names(first_names(model), model.alphabet, [row["name"].lower() for row in rows])
    for row, score in zip(rows, scores, strict=True):  # temperature does not change it
        assert row["log_prob"] == pytest.approx(score.log_prob, abs=1e-3)


def test_lower_temperature_gives_likelier_names() -> None:
    def mean_log_prob(temperature: str) -> float:
        rows = generate("--n", "300", "--temperature", temperature, "--seed", "5", "--json")
        return sum(json.loads(row)["log_prob"] for row in rows) / len(rows)

    assert mean_log_prob("0.5") > mean_log_prob("1") > mean_log_prob("2") + 2


def test_novel_skips_the_training_names(random_model_dir: Path) -> None:
    model = ["--model", str(random_model_dir), "--seed", "6"]
    common = generate(*model, "--n", "40", "--temperature", "0.6")
    (random_model_dir / NAMES_FILE).write_text("".join(f"{n.lower()}\n" for n in common))
    novel = generate(*model, "--n", "40", "--temperature", "0.6", "--novel")
    assert len(novel) == 40 and not set(novel) & set(common)


def test_novel_without_training_names_is_an_error(random_model_dir: Path) -> None:
    (random_model_dir / NAMES_FILE).unlink()
    result = run("generate", "--model", str(random_model_dir), "--novel")
    assert result.exit_code == 1
    assert NAMES_FILE in result.stderr and "--novel" in result.stderr


def test_samples_follow_the_model_distribution() -> None:
    """Shared-prefix sampling draws each name as often as its probability says."""
    model = open_model(bundled_model_dir())
    lm, n = first_names(model), 40000
    drawn = sample_names(lm, model.alphabet, n, seed=8, unique=False)
    counts = Counter(s.name for s in drawn)
    probs = {s.name: math.exp(s.log_prob) for s in drawn}
    for name, count in counts.most_common(8):
        p = probs[name]
        assert abs(count / n - p) < 5 * math.sqrt(p * (1 - p) / n), name


def test_unique_samples_are_the_first_distinct_ones_of_a_stream() -> None:
    """With duplicates dropped, likely names come first: the first 20 of 2000 distinct
    names are on average likelier than the last 20."""
    model = open_model(bundled_model_dir())
    drawn = sample_names(first_names(model), model.alphabet, 2000, seed=9)
    assert len({s.name for s in drawn}) == 2000
    assert sum(s.log_prob for s in drawn[:20]) > sum(s.log_prob for s in drawn[-20:])


def test_library_rejects_bad_values() -> None:
    model = open_model(bundled_model_dir())
    lm, alphabet = first_names(model), Alphabet()
    for kwargs in ({"temperature": 0.0}, {"top_k": 0}, {"min_length": 4, "max_length": 3}, {"prefix": "a1"}):
        with pytest.raises(CharlstmError):
            sample_names(lm, alphabet, 3, **kwargs)
    with pytest.raises(CharlstmError):
        sample_names(lm, alphabet, -1)


def test_generate_with_the_bundled_model_never_imports_tensorflow() -> None:
    code = (
        "import sys\n"
        "from charlstm.cli import cli\n"
        "cli.main(['generate', '--n', '5', '--seed', '1'], standalone_mode=False)\n"
        "cli.main(['score', 'anna'], standalone_mode=False)\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'jax', 'torch'})\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) == 5 + 4
    assert "bundled" in done.stderr


# --- constraints: suffix, contains, exclude_letters (issue 13) ---------------------------

RANDOM_MODEL_CACHE: dict[str, object] = {}


def random_model():
    """A small random model (hidden 16), opened once for the property tests."""
    if "model" not in RANDOM_MODEL_CACHE:
        import tempfile

        path = write_random_model(Path(tempfile.mkdtemp()) / "model", seed=3)
        RANDOM_MODEL_CACHE["model"] = open_model(path)
    return RANDOM_MODEL_CACHE["model"]


def satisfies(name: str, kwargs: dict) -> bool:
    return (
        kwargs.get("min_length", 1) <= len(name) <= kwargs.get("max_length", 32)
        and name.startswith(kwargs.get("prefix", ""))
        and name.endswith(kwargs.get("suffix", ""))
        and kwargs.get("contains", "") in name
        and not set(kwargs.get("exclude_letters", "")) & set(name)
    )


few_letters = st.text(alphabet="abcde", max_size=3)


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.text(alphabet="abcde", max_size=2),
    suffix=few_letters,
    contains=few_letters,
    exclude_letters=st.text(alphabet="abcdexyz", max_size=3),
    min_length=st.integers(1, 5),
    extra=st.integers(0, 6),
    n=st.integers(1, 15),
    unique=st.booleans(),
    temperature=st.sampled_from([0.7, 1.0, 1.5]),
    seed=st.integers(0, 100),
)
def test_every_name_meets_every_constraint_or_a_clear_error_comes_fast(
    prefix: str, suffix: str, contains: str, exclude_letters: str, min_length: int, extra: int,
    n: int, unique: bool, temperature: float, seed: int,
) -> None:  # fmt: skip
    model = random_model()
    kwargs = {
        "prefix": prefix, "suffix": suffix, "contains": contains, "exclude_letters": exclude_letters,
        "min_length": min_length, "max_length": min_length + extra,
    }  # fmt: skip
    exclude = {"a", "ab", "ba"}
    start = time.process_time()
    try:
        drawn = sample_names(
            first_names(model), model.alphabet, n, seed=seed, temperature=temperature, unique=unique,
            exclude=exclude, **kwargs,
        )  # fmt: skip
    except CharlstmError as exc:
        assert time.process_time() - start < 8, str(exc)
        assert "\n" not in str(exc)
        return
    names = [s.name for s in drawn]
    assert len(names) == n
    assert all(satisfies(name, kwargs) for name in names), (names, kwargs)
    assert not set(names) & exclude
    if unique:
        assert len(set(names)) == n


def test_constrained_samples_are_deterministic_for_a_seed() -> None:
    model = open_model(bundled_model_dir())
    kwargs = {"suffix": "na", "contains": "r", "exclude_letters": "z", "n": 50}

    def draw(seed: int) -> list[Sample]:
        return sample_names(first_names(model), model.alphabet, kwargs["n"], seed=seed, **{
            k: v for k, v in kwargs.items() if k != "n"})  # fmt: skip

    first = draw(4)
    assert first == draw(4)
    assert first != draw(5)
    assert all(s.name.endswith("na") and "r" in s.name and "z" not in s.name for s in first)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"suffix": "ella", "exclude_letters": "l"}, "suffix 'ella' uses excluded letters: 'l'"),
        ({"contains": "or", "exclude_letters": "ro"}, "contains-string 'or' uses excluded letters"),
        ({"prefix": "q", "exclude_letters": "q"}, "prefix 'q' uses excluded letters"),
        ({"suffix": "abcdef", "max_length": 5}, "longer than the maximum length"),
        ({"contains": "o1"}, "letters outside a-z: '1'"),
        ({"exclude_letters": "a-"}, "letters outside a-z: '-'"),
        ({"exclude_letters": "abcdefghijklmnopqrstuvwxyz"}, "every letter is excluded"),
        ({"prefix": "ab", "suffix": "cd", "max_length": 3}, "no name of 1-3 letters"),
        ({"prefix": "ab", "contains": "x", "suffix": "ba", "max_length": 4}, "no name of 1-4 letters"),
    ],
)
def test_impossible_constraints_fail_at_once(kwargs: dict, message: str) -> None:
    model = open_model(bundled_model_dir())
    start = time.process_time()
    with pytest.raises(CharlstmError, match=re.escape(message)):
        sample_names(first_names(model), model.alphabet, 5, **kwargs)
    assert time.process_time() - start < 0.5


@pytest.mark.parametrize(
    ("kwargs", "found"),
    [
        # "ella" and 26 names "?ella": at most 27 exist; the rarest may stay unfound.
        (
            {"suffix": "ella", "max_length": 5},
            r"could only produce 2[0-7] of 100 distinct names \(ending in 'ella'",
        ),
        ({"suffix": "q", "top_k": 1}, r"could only produce 0 of 100"),
        ({"contains": "xq", "top_k": 2, "exclude_letters": "a"}, r"could only produce \d+ of 100"),
    ],
)
def test_constraints_the_model_cannot_meet_fail_within_seconds(kwargs: dict, found: str) -> None:
    model = open_model(bundled_model_dir())
    start = time.process_time()
    with pytest.raises(CharlstmError, match=found) as info:
        sample_names(first_names(model), model.alphabet, 100, seed=1, **kwargs)
    assert time.process_time() - start < 6
    assert "samples; relax the constraints" in str(info.value)


def test_names_shorter_than_prefix_plus_suffix_are_found() -> None:
    model = open_model(bundled_model_dir())
    lm, alphabet = first_names(model), model.alphabet
    overlap = sample_names(lm, alphabet, 3, prefix="ell", suffix="ella", max_length=4, unique=False)
    assert [s.name for s in overlap] == ["ella"] * 3
    assert {s.name for s in sample_names(lm, alphabet, 1, prefix="ma", contains="ar", max_length=3)} == {
        "mar"
    }
    # Within 5 letters only "mari" (overlapping) and "maari" start with ma and end in ari.
    short = sample_names(lm, alphabet, 2, prefix="ma", suffix="ari", max_length=5, seed=2)
    assert {s.name for s in short} == {"mari", "maari"}
    start = time.process_time()
    with pytest.raises(CharlstmError, match=r"could only produce 2 of 3 distinct names"):
        sample_names(lm, alphabet, 3, prefix="ma", suffix="ari", max_length=5, seed=2)
    assert time.process_time() - start < 3


def test_excluded_letters_are_masked_exactly() -> None:
    """Only a and b allowed, names of exactly 2 letters: each is drawn with the masked,
    renormalized probability of its letters (and of ending after them), while the
    reported log-probability stays the model's."""
    model = open_model(bundled_model_dir())
    lm, alphabet, n = first_names(model), model.alphabet, 20000
    others = "".join(c for c in alphabet.letters if c not in "ab")
    drawn = sample_names(
        lm, alphabet, n, seed=3, exclude_letters=others, min_length=2, max_length=2, unique=False
    )
    counts = Counter(s.name for s in drawn)
    assert set(counts) <= {"aa", "ab", "ba", "bb"}
    allowed = [0, 1, 2]
    expected = {}
    for name in ("aa", "ab", "ba", "bb"):
        ids = alphabet.encode(name)
        probs = np.exp(log_softmax(lm.logits(np.array([ids[:-1]]))[0]))
        steps = [probs[0, ids[1]] / probs[0, 1:3].sum(), probs[1, ids[2]] / probs[1, 1:3].sum()]
        steps.append(probs[2, 0] / probs[2, allowed].sum())
        expected[name] = math.prod(steps)
    total = sum(expected.values())
    for name, p in expected.items():
        p /= total
        assert abs(counts[name] / n - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-3, (name, counts, p)
    scores = {s.name: s.log_prob for s in score_names(lm, alphabet, list(counts))}
    assert all(s.log_prob == pytest.approx(scores[s.name], abs=1e-3) for s in drawn[:50])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"suffix": "na"},
        {"contains": "ar"},
        {"suffix": "na", "contains": "an"},
        {"prefix": "jo", "contains": "os"},
    ],
)
def test_constrained_samples_follow_the_conditional_distribution(kwargs: dict) -> None:
    """Each name is drawn in proportion to its model probability: count / probability is
    about the same for the likeliest names (it estimates n / P(constraints))."""
    model = open_model(bundled_model_dir())
    drawn = sample_names(first_names(model), model.alphabet, 20000, seed=8, unique=False, **kwargs)
    counts = Counter(s.name for s in drawn)
    probs = {s.name: math.exp(s.log_prob) for s in drawn}
    ratios = [count / probs[name] for name, count in counts.most_common(6)]
    middle = statistics.median(ratios)
    assert all(abs(r / middle - 1) < 0.3 for r in ratios), (counts.most_common(6), ratios)


def test_constrained_log_probs_are_the_models(random_model_dir: Path) -> None:
    model = open_model(random_model_dir)
    drawn = sample_names(
        first_names(model), model.alphabet, 30, seed=1, temperature=1.7, suffix="a", contains="e",
        exclude_letters="z",
    )  # fmt: skip
    scores = score_names(first_names(model), model.alphabet, [s.name for s in drawn])
    for sample, score in zip(drawn, scores, strict=True):
        assert sample.log_prob == pytest.approx(score.log_prob, abs=1e-3)


def test_cli_constraint_options_fold_and_combine() -> None:
    names = generate("--n", "30", "--suffix", "ELLA", "--exclude-letters", "Zq", "--seed", "1")
    assert len(set(names)) == 30
    assert all(name.lower().endswith("ella") and not set(name.lower()) & {"z", "q"} for name in names)
    names = generate("--n", "20", "--contains", "Ör", "--prefix", "a", "--max-length", "7", "--seed", "2")
    assert all(name.startswith("A") and "or" in name and len(name) <= 7 for name in names)


@pytest.mark.parametrize(
    ("args", "option", "status"),
    [
        (["--suffix", "el1"], "--suffix", 2),
        (["--contains", "o r"], "--contains", 2),
        (["--exclude-letters", "x,y"], "--exclude-letters", 2),
        (["--suffix", "abcdef", "--max-length", "4"], "--suffix", 2),
        (["--suffix", "ella", "--exclude-letters", "L"], "uses excluded letters: 'l'", 1),
        (["--suffix", "ella", "--max-length", "5", "--n", "50"], "of 50 distinct names (ending in 'ella'", 1),
    ],
)
def test_cli_constraint_errors(args: list[str], option: str, status: int) -> None:
    result = run("generate", *args)
    assert result.exit_code == status, result.output
    assert option in result.stderr and result.stdout == ""
    assert "Traceback" not in result.output


def test_cli_help_explains_the_constraint_options() -> None:
    text = run("generate", "--help").output
    for example in ("--suffix ella", "--contains or", "--exclude-letters xqz"):
        assert example in text
