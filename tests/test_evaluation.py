"""`charlstm score` and `charlstm evaluate` against hand-computed likelihoods."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import write_random_model

from charlstm import checkpoint as ckpt
from charlstm.alphabet import Alphabet
from charlstm.cli import cli
from charlstm.errors import CharlstmError
from charlstm.evaluation import evaluate_names

# With every LSTM weight zero the cell and hidden states stay zero, so the model's
# logits are the output bias at every step: each symbol's log-probability is fixed.
OUT_BIAS = np.array([0.5, 1.0, -0.5, 0.25] + [0.0] * 23, np.float32)
LOG_P = OUT_BIAS.astype(np.float64) - math.log(np.exp(OUT_BIAS.astype(np.float64)).sum())
A, B, C, END = (LOG_P[i] for i in (1, 2, 3, 0))


@pytest.fixture
def constant_model(tmp_path: Path) -> Path:
    path = write_random_model(tmp_path / "constant", hidden=(4,))
    with np.load(path / ckpt.WEIGHTS_FILE) as npz:
        arrays = {k: np.zeros_like(npz[k]) for k in npz.files}
    arrays["out_bias"] = OUT_BIAS
    ckpt.write_arrays(path / ckpt.WEIGHTS_FILE, arrays)
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_evaluate_nll_equals_the_hand_computed_value(constant_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "test.txt"
    data.write_text("ab\nAB\nc\n\n")  # duplicates count every time; blank lines do not
    result = run("evaluate", str(data), "--model", str(constant_model), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # ab, ab: a b END each; c: c END  ->  8 predicted symbols in 3 names
    nll = -(2 * (A + B + END) + C + END) / 8
    assert report["names"] == 3 and report["symbols"] == 8
    assert report["nll_per_char"] == pytest.approx(nll, rel=1e-6)
    assert report["bits_per_char"] == pytest.approx(nll / math.log(2), rel=1e-6)
    assert report["perplexity"] == pytest.approx(math.exp(nll), rel=1e-6)
    text = run("evaluate", str(data), "--model", str(constant_model)).stdout
    assert f"{nll:.4f} nats per symbol ({nll / math.log(2):.4f} bits)" in text


def test_score_equals_the_hand_computed_value(constant_model: Path) -> None:
    result = run("score", "Cab", "a", "--model", str(constant_model), "--json")
    assert result.exit_code == 0, result.output
    cab, a = (json.loads(line) for line in result.stdout.splitlines())
    assert cab["name"] == "Cab" and a["name"] == "a"
    assert cab["log_prob"] == pytest.approx(C + A + B + END, rel=1e-6)
    assert cab["nll_per_char"] == pytest.approx(-(C + A + B + END) / 4, rel=1e-6)
    assert cab["bits_per_char"] == pytest.approx(cab["nll_per_char"] / math.log(2), rel=1e-9)
    assert a["log_prob"] == pytest.approx(A + END, rel=1e-6)
    text = run("score", "Cab", "--model", str(constant_model)).stdout
    nll = -(C + A + B + END) / 4
    assert text == f"Cab\t{nll:.4f}\t{nll / math.log(2):.4f}\t{C + A + B + END:.4f}\n"


def test_score_ranks_a_real_name_above_gibberish() -> None:
    result = run("score", "Anna", "Xqzzkv", "--json")
    anna, junk = (json.loads(line) for line in result.stdout.splitlines())
    assert anna["nll_per_char"] < 2.5 < junk["nll_per_char"]


@pytest.mark.parametrize("name", ["x1", "mary-jane", " "])
def test_score_rejects_what_is_not_a_name(name: str) -> None:
    result = run("score", "anna", name)
    assert result.exit_code == 2
    assert repr(name) in result.stderr and result.stdout == ""


def test_evaluate_needs_names() -> None:
    with pytest.raises(CharlstmError):
        evaluate_names(None, Alphabet(), [])  # type: ignore[arg-type]
