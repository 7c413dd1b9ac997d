"""The command line as a user meets it: help, version, model resolution, end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from charlstm import __version__
from charlstm import checkpoint as ckpt
from charlstm.cli import cli

COMMANDS = ["train", "generate", "blend", "score", "evaluate", "info", "export"]


def run(*args: str, env: dict | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_help_of_every_command_teaches_by_example_without_tensorflow() -> None:
    script = (
        "import sys\n"
        "from charlstm.cli import cli\n"
        f"for args in [['--help']] + [[c, '--help'] for c in {COMMANDS!r}]:\n"
        "    try:\n"
        "        cli(args, prog_name='charlstm')\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, args\n"
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
    assert out.stdout.count("Example") >= len(COMMANDS) + 1


def test_version_and_python_dash_m() -> None:
    assert run("--version").stdout.strip() == f"charlstm, version {__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "charlstm", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_generate_with_bundled_model_prints_exactly_n_names() -> None:
    result = run("generate", "--n", "25", "--seed", "3")
    assert result.exit_code == 0
    names = result.stdout.splitlines()
    assert len(names) == 25
    assert all(name.isalpha() for name in names)
    assert "bundled" in result.stderr


def test_generate_same_seed_same_names_other_seed_other_names() -> None:
    first = run("generate", "--n", "10", "--seed", "7").stdout
    assert first == run("generate", "--n", "10", "--seed", "7").stdout
    assert first != run("generate", "--n", "10", "--seed", "8").stdout


def test_model_resolution_order(tmp_path: Path, random_model_dir: Path) -> None:
    # Nothing else: the bundled model.
    assert "(bundled)" in run("info").stderr
    # ./charlstm-model in the current directory beats the bundled model.
    local = tmp_path / ckpt.DEFAULT_MODEL_DIR
    random_model_dir.rename(local)
    result = run("info", "--json")
    assert "trained in this directory" in result.stderr
    assert json.loads(result.stdout)["path"] == ckpt.DEFAULT_MODEL_DIR
    # $CHARLSTM_MODEL beats ./charlstm-model; --model beats both.
    bundled = str(ckpt.bundled_model_dir())
    assert json.loads(run("info", "--json", env={ckpt.MODEL_ENV: bundled}).stdout)["path"] == bundled
    assert "--model" in run("info", "--model", str(local), env={ckpt.MODEL_ENV: bundled}).stderr


def test_info_describes_the_bundled_model() -> None:
    info = json.loads(run("info", "--json").stdout)
    assert info["alphabet"] == "\\nabcdefghijklmnopqrstuvwxyz"
    assert info["parameters"] > 0 and info["epochs"] >= 1
    assert 0 < info["best_val_nll"] < math.log(27)  # better than uniform guessing
    assert info["training_file"].endswith("names.tsv")  # the census lists, tagged
    assert list(info["tags"]) == ["female", "male", "surname"] and info["family_tag"] == "surname"


def test_evaluate_json_reports_consistent_figures(names_file: Path) -> None:
    result = run("evaluate", str(names_file), "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert set(report) == {"nll_per_char", "bits_per_char", "perplexity", "names", "symbols"}
    lines = names_file.read_text().split()
    assert report["names"] == len(lines)
    assert report["symbols"] == sum(len(n) + 1 for n in lines)
    assert report["perplexity"] == pytest.approx(math.exp(report["nll_per_char"]))
    assert report["bits_per_char"] == pytest.approx(report["nll_per_char"] / math.log(2))


def test_train_then_generate_end_to_end(names_file: Path) -> None:
    args = ["train", str(names_file), "--epochs", "2", "--hidden", "8", "--layers", "1"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # progress and reports go to stderr
    assert "epoch 2:" in result.stderr
    model_dir = Path(ckpt.DEFAULT_MODEL_DIR)
    for name in (ckpt.META_FILE, ckpt.WEIGHTS_FILE, ckpt.KERAS_FILE, ckpt.NAMES_FILE, ckpt.HISTORY_FILE):
        assert (model_dir / name).is_file(), name
    info = json.loads(run("info", "--json").stdout)
    assert info["epochs"] == 2 and info["architecture"]["hidden"] == 8
    # The model just trained is the one generate now uses, and seeds repeat.
    first = run("generate", "--n", "5", "--seed", "7")
    assert "trained in this directory" in first.stderr
    assert len(first.stdout.splitlines()) == 5
    assert first.stdout == run("generate", "--n", "5", "--seed", "7").stdout
    # Training again into the same directory never silently replaces the model.
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1
    assert "--overwrite" in again.stderr
