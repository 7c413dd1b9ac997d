"""``explain`` (charlstm.explain): each step's probabilities, the text table, misuse; and that the
light commands never import matplotlib or TensorFlow."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from charlstm.checkpoint import open_model
from charlstm.cli import cli

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(*args: str, env: dict | None = None, color: bool = False, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, color=color, input=input)


def explain_json(model: Path, name: str, *extra: str) -> dict:
    result = run("explain", name, "--model", str(model), "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", ["Anna", "Zoë", "xqzzy", "a"])
def test_steps_add_up_to_score(random_model_dir: Path, name: str) -> None:
    data = explain_json(random_model_dir, name, "--top", "4")
    scored = json.loads(run("score", name, "--model", str(random_model_dir), "--json").stdout)
    assert data["name"] == name
    assert abs(data["log_prob"] - scored["log_prob"]) < 1e-4
    steps = data["steps"]
    letters = data["letters"]
    assert len(steps) == len(letters) + 1
    assert [s["symbol"] for s in steps] == [*letters, "\n"]
    assert [s["context"] for s in steps] == [letters[:t] for t in range(len(steps))]
    assert math.fsum(s["log_prob"] for s in steps) == pytest.approx(data["log_prob"], abs=1e-6)
    for step in steps:
        assert step["prob"] == pytest.approx(math.exp(step["log_prob"]), abs=1e-6)
        assert step["surprisal_bits"] == pytest.approx(-step["log_prob"] / math.log(2), abs=1e-4)
        others = [a["prob"] for a in step["alternatives"]]
        assert len(others) == 4 and others == sorted(others, reverse=True)
        assert step["symbol"] not in [a["symbol"] for a in step["alternatives"]]
        # rank 1 means no other symbol is likelier; otherwise the likeliest other one is.
        assert (step["rank"] == 1) == (others[0] <= step["prob"])


def test_distribution_is_the_models(random_model_dir: Path) -> None:
    from charlstm.explain import explain_name
    from charlstm.npmodel import log_softmax

    model = open_model(random_model_dir)
    explanation = explain_name(model.lm(), model.alphabet, "Emma", top=3)
    ids = model.alphabet.encode("emma")
    expected = np.exp(log_softmax(model.lm().logits(np.array([ids[:-1]])))[0])
    np.testing.assert_allclose(explanation.probs, expected, atol=1e-6)
    np.testing.assert_allclose(explanation.probs.sum(axis=1), 1.0, atol=1e-6)
    ranks = [int((row > row[t]).sum()) + 1 for row, t in zip(expected, ids[1:], strict=True)]
    assert [s.rank for s in explanation.steps] == ranks


def test_text_table_colours_only_on_a_terminal(random_model_dir: Path) -> None:
    model = str(random_model_dir)
    plain = run("explain", "Olivia", "--model", model, "--top", "2")
    assert plain.exit_code == 0
    assert "\x1b[" not in plain.stdout  # not a terminal: no colours
    lines = plain.stdout.splitlines()
    rows = [line for line in lines if re.match(r"\s+\d+\s+\^", line)]
    assert len(rows) == len("olivia") + 1
    assert rows[0].split()[:3] == ["1", "^", "o"] and rows[-1].split()[:3] == ["7", "^olivia", "$"]
    score = run("score", "Olivia", "--model", model).stdout.split("\t")
    assert lines[-1].startswith(f"total: log_prob {float(score[3]):.4f} nats")
    coloured = run("explain", "Olivia", "--model", model, "--top", "2", color=True)
    assert "\x1b[3" in coloured.stdout  # a terminal: green/yellow/red
    assert ANSI.sub("", coloured.stdout) == plain.stdout
    no_color = run("explain", "Olivia", "--model", model, "--top", "2", color=True, env={"NO_COLOR": "1"})
    assert no_color.stdout == plain.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(["Br4d"], "is not a name in a-z"), ([" "], "is not a name"), (["Anna", "--top", "0"], "--top")],
)
def test_bad_input_is_a_usage_error(random_model_dir: Path, args: list[str], message: str) -> None:
    result = run("explain", *args, "--model", str(random_model_dir))
    assert result.exit_code == 2
    assert message in result.output and "Error:" in result.output
    assert "Traceback" not in result.output


def test_light_commands_import_no_drawing_or_tensorflow(random_model_dir: Path, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from charlstm.cli import cli\n"
        "def call(*args):\n"
        "    try:\n"
        "        cli(list(args), prog_name='charlstm')\n"
        "    except SystemExit as exit:\n"
        "        assert not exit.code, args\n"
        "call('--help'); call('blend', 'Brad', 'Angelina'); call('explain', 'Anna', '-m', sys.argv[1])\n"
        "print('LIGHT', [m for m in ('matplotlib', 'jinja2', 'tensorflow', 'keras') if m in sys.modules])\n"
        "call('explain', 'Anna', '-m', sys.argv[1], '--html', sys.argv[2])\n"
        "print('HTML', [m for m in ('tensorflow', 'keras') if m in sys.modules])\n"
    )
    page = tmp_path / "anna.html"
    command = [sys.executable, "-c", script, str(random_model_dir), str(page)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "LIGHT []" in out and "HTML []" in out and page.is_file()
