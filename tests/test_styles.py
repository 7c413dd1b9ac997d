"""Names in a style: tagged training, sampling by tag, classify, tagged scoring and errors.

A tiny model learns two separable styles: tag ``ab`` names use only a and b, tag
``xy`` names only x and y (and ``fam`` is the family-name tag, names of m and n).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import write_random_model

from charlstm import checkpoint as ckpt
from charlstm.cli import cli

STYLES = {"ab": "ab", "xy": "xy", "fam": "mn"}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _style_names(letters: str, count: int, rng: np.random.Generator) -> list[str]:
    return ["".join(rng.choice(list(letters), rng.integers(3, 7))) for _ in range(count)]


@pytest.fixture(scope="module")
def styled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tagged model trained on three separable styles (a few seconds)."""
    root = tmp_path_factory.mktemp("styles")
    rng = np.random.default_rng(0)
    lines = [f"{n}\t{tag}" for tag, letters in STYLES.items() for n in _style_names(letters, 60, rng)]
    (root / "styles.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = root / "model"
    # A tiny model on made-up styles: no regularisation needed.
    result = run(
        "train", str(root / "styles.tsv"), "--model", str(model), "--epochs", "25", "--hidden", "24",
        "--layers", "1", "--dropout", "0", "--batch-size", "8", "--learning-rate", "0.01",
        "--family-tag", "fam", "--seed", "2", "--input-dropout", "0", "--weight-decay", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return model


def test_info_lists_the_tags_with_their_training_counts(styled: Path) -> None:
    info = json.loads(run("info", "--model", str(styled), "--json").stdout)
    assert list(info["tags"]) == ["ab", "fam", "xy"] and info["family_tag"] == "fam"
    assert (
        sum(info["tags"].values())
        == json.loads((styled / ckpt.META_FILE).read_text())["training"]["train_names"]
    )
    assert info["format_version"] == ckpt.FORMAT_VERSION and info["architecture"]["tag_dim"] >= 1


@pytest.mark.parametrize("tag", ["ab", "xy"])
def test_sampling_follows_the_tag(styled: Path, tag: str) -> None:
    out = run("generate", "--model", str(styled), "--tag", tag, "--n", "40", "--seed", "1", "--json")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 40 and {r["tag"] for r in rows} == {tag}
    in_style = [set(r["name"].lower()) <= set(STYLES[tag]) for r in rows]
    assert np.mean(in_style) >= 0.9


def test_default_draws_first_name_tags_and_full_names_add_the_family_tag(styled: Path) -> None:
    rows = [json.loads(line) for line in run("generate", "--model", str(styled), "--n", "60", "--seed", "3",
                                             "--json").stdout.splitlines()]  # fmt: skip
    assert {r["tag"] for r in rows} == {"ab", "xy"}  # never the family-name tag by default
    full = run("generate", "--model", str(styled), "--full", "--tag", "ab", "--n", "10", "--seed", "4").stdout
    names = [line.split(" ") for line in full.splitlines()]
    assert len(names) == 10 and all(len(parts) == 2 and parts[0][0].isupper() for parts in names)
    assert np.mean([set(last.lower()) <= set("mn") for _, last in names]) >= 0.8


def test_constraints_hold_under_a_tag(styled: Path) -> None:
    args = ["--tag", "ab", "--suffix", "ab", "--exclude-letters", "x", "--n", "15", "--seed", "5"]
    names = run("generate", "--model", str(styled), *args).stdout.split()
    assert len(names) == 15 and all(n.lower().endswith("ab") and "x" not in n.lower() for n in names)


def test_classify_picks_the_style_and_its_probabilities_sum_to_one(styled: Path) -> None:
    out = run("classify", "--model", str(styled), "--json", "abba", "xyyx", "mnnm")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [next(iter(r["probabilities"])) for r in rows] == ["ab", "xy", "fam"]
    for row in rows:
        assert math.fsum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-9)
        assert list(row["probabilities"].values()) == sorted(row["probabilities"].values(), reverse=True)
    text = run("classify", "--model", str(styled), "Abba").stdout
    assert text.startswith("Abba\tab ")


def test_untagged_names_score_as_the_frequency_weighted_mixture(styled: Path, tmp_path: Path) -> None:
    model = ckpt.open_model(styled)
    score = lambda *args: json.loads(run("score", "--model", str(styled), "--json", *args).stdout)  # noqa: E731
    per_tag = {tag: score("--tag", tag, "abab")["log_prob"] for tag in model.meta.tags}
    weights = model.meta.tag_weights()
    expected = math.log(sum(weights[t] * math.exp(lp) for t, lp in per_tag.items()))
    mixed = score("abab")["log_prob"]
    assert mixed == pytest.approx(expected, abs=1e-4)
    explained = json.loads(run("explain", "--model", str(styled), "--json", "abab").stdout)
    assert explained["log_prob"] == pytest.approx(mixed, abs=1e-4)
    (tmp_path / "mixed.txt").write_text("abab\txy\nabab\n", encoding="utf-8")
    report = json.loads(run("evaluate", str(tmp_path / "mixed.txt"), "--model", str(styled), "--json").stdout)
    assert report["per_tag"] == {"xy": pytest.approx(-per_tag["xy"] / 5, abs=1e-4)}
    assert report["nll_per_char"] == pytest.approx(-(per_tag["xy"] + mixed) / 10, abs=1e-4)


@pytest.mark.parametrize(
    "args",
    [["generate", "--tag", "nope"], ["score", "abba", "--tag", "nope"], ["explain", "abba", "--tag", "nope"]],
)
def test_an_unknown_tag_is_a_usage_error_listing_the_tags(styled: Path, args: list[str]) -> None:
    result = run(*args, "--model", str(styled))
    assert result.exit_code == 2 and "unknown tag 'nope'; the model's tags: ab, fam, xy" in result.stderr


@pytest.mark.parametrize(
    ("args", "needs"),
    [
        (["generate", "--tag", "female"], "--tag"),
        (["generate", "--full"], "--full"),
        (["classify", "Anna"], "classify"),
    ],
)
def test_tags_on_an_untagged_model_are_a_one_line_error(
    random_model_dir: Path, args: list[str], needs: str
) -> None:
    result = run(*args, "--model", str(random_model_dir))
    assert result.exit_code == 1 and result.stderr.count("\n") == 2  # "using model", then the error
    assert f"Error: {needs} needs a tagged model" in result.stderr and "Traceback" not in result.output


def test_full_names_need_a_family_tag(tmp_path: Path) -> None:
    (tmp_path / "two.tsv").write_text("anna\tf\nbob\tm\nclara\tf\ndan\tm\n", encoding="utf-8")
    model = tmp_path / "m"
    assert run("train", str(tmp_path / "two.tsv"), "--model", str(model), "--epochs", "1", "--hidden", "4",
               "--layers", "1", "--val-fraction", "0").exit_code == 0  # fmt: skip
    result = run("generate", "--model", str(model), "--full")
    assert result.exit_code == 1 and "needs a family-name tag" in result.stderr


def test_mixed_tagged_and_untagged_lines_are_refused_before_training(tmp_path: Path) -> None:
    (tmp_path / "mixed.tsv").write_text("anna\tf\nbob\n", encoding="utf-8")
    result = run("train", str(tmp_path / "mixed.tsv"), "--model", str(tmp_path / "m"))
    assert result.exit_code == 1 and "1 line(s) have no tag while others do" in result.stderr


def test_tag_by_file_tags_each_file_with_its_stem(tmp_path: Path) -> None:
    for stem, names in (("girls", "anna\nemma\nella\n"), ("boys", "bob\ndan\nleo\n")):
        (tmp_path / f"{stem}.txt").write_text(names, encoding="utf-8")
    model = tmp_path / "m"
    args = [str(tmp_path / "girls.txt"), str(tmp_path / "boys.txt"), "--tag-by-file", "--model", str(model)]
    tiny = ["--epochs", "1", "--hidden", "4", "--layers", "1", "--val-fraction", "0"]
    assert run("train", *args, *tiny).exit_code == 0
    assert json.loads((model / ckpt.META_FILE).read_text())["tags"] == ["boys", "girls"]


def test_format_1_model_directories_still_read_as_untagged(tmp_path: Path) -> None:
    model = write_random_model(tmp_path / "old")
    before = run("generate", "--model", str(model), "--n", "8", "--seed", "1", "--json").stdout
    meta = json.loads((model / ckpt.META_FILE).read_text())
    meta["format_version"] = 1
    (model / ckpt.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    assert run("generate", "--model", str(model), "--n", "8", "--seed", "1", "--json").stdout == before
    assert "tag" not in before
    assert "tags" not in json.loads(run("info", "--model", str(model), "--json").stdout)
