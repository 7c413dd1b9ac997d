"""`charlstm generate`: every option, bad values, reproducibility, speed-critical paths."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from charlstm.alphabet import Alphabet
from charlstm.checkpoint import NAMES_FILE, bundled_model_dir, open_model
from charlstm.cli import cli
from charlstm.errors import CharlstmError
from charlstm.evaluation import score_names
from charlstm.sampling import sample_names


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
    assert generate("--n", "1", "--top-k", "1", "--seed", "1") == generate("--n", "1", "--top-k", "1")
    result = run("generate", "--n", "2", "--top-k", "1")
    assert result.exit_code == 1 and "could only produce 1 of 2" in result.stderr


def test_extreme_temperatures_and_lengths_still_give_names() -> None:
    greedy = generate("--n", "3", "--temperature", "1e-300", "--min-length", "9", "--allow-duplicates")
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
    scores = score_names(model.lm(), model.alphabet, [row["name"].lower() for row in rows])
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
    lm, n = model.lm(), 40000
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
    drawn = sample_names(model.lm(), model.alphabet, 2000, seed=9)
    assert len({s.name for s in drawn}) == 2000
    assert sum(s.log_prob for s in drawn[:20]) > sum(s.log_prob for s in drawn[-20:])


def test_library_rejects_bad_values() -> None:
    model = open_model(bundled_model_dir())
    lm, alphabet = model.lm(), Alphabet()
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
