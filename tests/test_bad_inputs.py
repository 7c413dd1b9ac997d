"""Bad input across every command: a documented exit status, a one-line message, no
traceback, and nothing that already existed is modified.

Exit status 2 is a usage error (Click's own format: usage line, then ``Error: ...``);
1 is a problem with the data or the model (``Error: ...`` alone).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_random_model
from hypothesis import given, settings
from hypothesis import strategies as st

from charlstm import checkpoint as ckpt
from charlstm.cli import cli


def _rewrite_meta(path: Path, **changes: object) -> None:
    meta = json.loads((path / ckpt.META_FILE).read_text())
    meta.update(changes)
    (path / ckpt.META_FILE).write_text(json.dumps(meta))


def _rewrite_weights(path: Path, key: str, value: np.ndarray) -> None:
    arrays = dict(np.load(path / ckpt.WEIGHTS_FILE))
    arrays[key] = value
    with open(path / ckpt.WEIGHTS_FILE, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The current directory, holding good and bad names files and model directories."""
    write_random_model(tmp_path / "model")
    (tmp_path / "names.txt").write_text("anna\nbob\nzoe\n")
    (tmp_path / "binary.dat").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00")
    (tmp_path / "latin1.txt").write_bytes("anna\nbob\nzoë\n".encode("latin-1"))
    (tmp_path / "utf16.txt").write_bytes("anna\nbob\n".encode("utf-16"))
    (tmp_path / "nonames.txt").write_text("123\n\n---\n")
    (tmp_path / "mixed.txt").write_text("anna\nann-marie\nbob\n")
    (tmp_path / "long.txt").write_text("anna\nalexandra\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty").mkdir()
    for name in ("truncated", "badjson", "newer", "otheralpha", "wrongshape", "noweights", "nanweights"):
        write_random_model(tmp_path / name)
    weights = tmp_path / "truncated" / ckpt.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:200])
    (tmp_path / "badjson" / ckpt.META_FILE).write_text('{"format_version": 1, "alphabet": [')
    _rewrite_meta(tmp_path / "newer", format_version=ckpt.FORMAT_VERSION + 1)
    _rewrite_meta(tmp_path / "otheralpha", alphabet=list("\nabcdefghij"))
    _rewrite_weights(tmp_path / "wrongshape", "out_kernel", np.zeros((8, 27), np.float32))
    (tmp_path / "noweights" / ckpt.WEIGHTS_FILE).unlink()
    _rewrite_weights(tmp_path / "nanweights", "lstm0_bias", np.full(64, np.nan, np.float32))
    return tmp_path


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a hash of its content."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


M = ["--model", "model"]
NEWER = f"format version {ckpt.FORMAT_VERSION + 1}"  # what a model from a later charlstm says
USAGE, FAILURE = 2, 1

CASES = [
    # train: the names file
    ("train-missing-file", ["train", "missing.txt"], USAGE, "File 'missing.txt' does not exist"),
    ("train-directory", ["train", "folder"], USAGE, "File 'folder' is a directory"),
    (
        "train-binary",
        ["train", "binary.dat"],
        FAILURE,
        "binary.dat: looks like a binary file, expected UTF-8",
    ),
    ("train-latin1", ["train", "latin1.txt"], FAILURE, "latin1.txt: line 3 is not valid UTF-8"),
    ("train-utf16", ["train", "utf16.txt"], FAILURE, "utf16.txt: is UTF-16 text; save it as UTF-8"),
    ("train-no-names", ["train", "nonames.txt"], FAILURE, "nonames.txt: no usable names"),
    (
        "train-strict",
        ["train", "mixed.txt", "--strict"],
        FAILURE,
        "mixed.txt: line 2: 'ann-marie' has symbols outside the alphabet: '-'",
    ),
    (
        "train-strict-length",
        ["train", "long.txt", "--strict", "--max-name-length", "5"],
        FAILURE,
        "long.txt: line 2: 'alexandra' is longer than 5 letters",
    ),
    (
        "train-val-binary",
        ["train", "names.txt", "--val-file", "binary.dat"],
        FAILURE,
        "binary.dat: looks like a binary file",
    ),
    # train: the model directory and options
    ("train-over-a-model", ["train", "names.txt", *M], FAILURE, "model: already holds a model; use --resume"),
    (
        "train-resume-no-state",
        ["train", "names.txt", *M, "--resume"],
        FAILURE,
        "model/state/state.json: missing; nothing to resume",
    ),
    (
        "train-resume-multiworker",
        ["train", "names.txt", *M, "--resume", "--strategy", "multiworker"],
        FAILURE,
        "--resume cannot continue a multiworker training",
    ),
    (
        "train-model-is-file",
        ["train", "names.txt", "-m", "names.txt"],
        USAGE,
        "Directory 'names.txt' is a file",
    ),
    (
        "train-resume-nothing",
        ["train", "names.txt", "-m", "new", "--resume"],
        USAGE,
        "new holds no model to resume",
    ),
    (
        "train-resume-overwrite",
        ["train", "names.txt", *M, "--resume", "--overwrite"],
        USAGE,
        "--resume and --overwrite exclude each other",
    ),
    ("train-epochs-zero", ["train", "names.txt", "--epochs", "0"], USAGE, "0 is not in the range x>=1"),
    ("train-hidden-negative", ["train", "names.txt", "--hidden", "-4"], USAGE, "-4 is not in the range x>=1"),
    (
        "train-batch-text",
        ["train", "names.txt", "--batch-size", "big"],
        USAGE,
        "'big' is not a valid integer",
    ),
    ("train-lr-nan", ["train", "names.txt", "--learning-rate", "nan"], USAGE, "'nan' is not a finite number"),
    ("train-val-one", ["train", "names.txt", "--val-fraction", "1"], USAGE, "1.0 is not in the range 0<=x<1"),
    ("train-seed-negative", ["train", "names.txt", "--seed", "-1"], USAGE, "-1 is not in the range 0<=x"),
    (
        "train-val-missing",
        ["train", "names.txt", "--val-file", "nope.txt"],
        USAGE,
        "'nope.txt' does not exist",
    ),
    # generate: option values
    ("generate-n-zero", ["generate", *M, "--n", "0"], USAGE, "0 is not in the range x>=1"),
    ("generate-n-negative", ["generate", *M, "--n", "-3"], USAGE, "-3 is not in the range x>=1"),
    ("generate-t-zero", ["generate", *M, "-t", "0"], USAGE, "0.0 is not in the range x>0"),
    ("generate-t-negative", ["generate", *M, "-t", "-1"], USAGE, "-1.0 is not in the range x>0"),
    ("generate-t-inf", ["generate", *M, "-t", "inf"], USAGE, "'inf' is not a finite number"),
    ("generate-top-k-zero", ["generate", *M, "--top-k", "0"], USAGE, "0 is not in the range x>=1"),
    ("generate-prefix-digit", ["generate", *M, "--prefix", "a1"], USAGE, "letters outside a-z: '1'"),
    ("generate-prefix-space", ["generate", *M, "--prefix", "mary ann"], USAGE, "letters outside a-z: ' '"),
    ("generate-seed-negative", ["generate", *M, "--seed", "-5"], USAGE, "-5 is not in the range 0<=x"),
    # generate: model directories
    ("generate-model-is-file", ["generate", "-m", "names.txt"], USAGE, "Directory 'names.txt' is a file"),
    ("generate-model-missing", ["generate", "-m", "missing"], FAILURE, "missing: no such model directory"),
    ("generate-model-empty", ["generate", "-m", "empty"], FAILURE, "empty/model.json: missing"),
    ("generate-truncated", ["generate", "-m", "truncated"], FAILURE, "truncated/weights.npz: unreadable"),
    (
        "generate-bad-json",
        ["generate", "-m", "badjson"],
        FAILURE,
        "badjson/model.json: damaged model metadata",
    ),
    ("generate-newer", ["generate", "-m", "newer"], FAILURE, f"newer/model.json: {NEWER} is newer"),
    (
        "generate-other-alphabet",
        ["generate", "-m", "otheralpha"],
        FAILURE,
        "otheralpha/weights.npz: weights are for 27 symbols but the alphabet in model.json has 11",
    ),
    (
        "generate-wrong-shape",
        ["generate", "-m", "wrongshape"],
        FAILURE,
        "wrongshape/weights.npz: damaged weights (out_kernel has shape (8, 27), expected (16, 27))",
    ),
    ("generate-no-weights", ["generate", "-m", "noweights"], FAILURE, "noweights/weights.npz: missing"),
    ("generate-nan-weights", ["generate", "-m", "nanweights"], FAILURE, "not finite numbers"),
    # blend
    ("blend-one-word", ["blend", "Brad", *M], USAGE, "WORD2"),
    ("blend-empty-word", ["blend", "", "Angelina", *M], FAILURE, "cannot blend an empty word"),
    ("blend-digit", ["blend", "Bob1", "Alice", *M], FAILURE, "'Bob1' has"),
    ("blend-top-zero", ["blend", "Brad", "Angelina", *M, "--top", "0"], USAGE, "0 is not in the range x>=1"),
    ("blend-bad-json", ["blend", "Brad", "Angelina", "-m", "badjson"], FAILURE, "model.json: damaged"),
    # score
    ("score-no-names", ["score", *M], USAGE, "Missing argument 'NAMES...'"),
    ("score-digit", ["score", "anna", "r2d2", *M], USAGE, "'r2d2' is not a name in a-z"),
    ("score-truncated", ["score", "anna", "-m", "truncated"], FAILURE, "truncated/weights.npz: unreadable"),
    # evaluate
    ("evaluate-missing", ["evaluate", "missing.txt", *M], USAGE, "File 'missing.txt' does not exist"),
    ("evaluate-directory", ["evaluate", "folder", *M], USAGE, "File 'folder' is a directory"),
    ("evaluate-binary", ["evaluate", "binary.dat", *M], FAILURE, "binary.dat: looks like a binary file"),
    ("evaluate-no-names", ["evaluate", "nonames.txt", *M], FAILURE, "nonames.txt: no usable names"),
    ("evaluate-newer", ["evaluate", "names.txt", "-m", "newer"], FAILURE, f"{NEWER} is newer"),
    # info
    ("info-missing", ["info", "-m", "missing"], FAILURE, "missing: no such model directory"),
    ("info-bad-json", ["info", "-m", "badjson"], FAILURE, "badjson/model.json: damaged model metadata"),
    ("info-model-is-file", ["info", "-m", "names.txt"], USAGE, "Directory 'names.txt' is a file"),
    ("unknown-command", ["frobnicate"], USAGE, "No such command 'frobnicate'"),
]


@pytest.mark.parametrize(("args", "status", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(workspace: Path, args: list[str], status: int, message: str) -> None:
    before = snapshot(workspace)
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, SystemExit), result.exception  # no crash
    assert result.exit_code == status, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    if status == FAILURE:  # data and model errors: the message alone, no usage text
        assert not result.stderr.startswith("Usage:")
    assert result.stdout == ""
    assert snapshot(workspace) == before


def test_train_refuses_bad_input_before_importing_tensorflow(workspace: Path) -> None:
    """Importing TensorFlow takes seconds: what fails without it fails first."""
    cases = [(args, msg) for _, args, status, msg in CASES if args[0] == "train" and status == FAILURE]
    script = (
        "import json, sys\n"
        "import click\n"
        "from charlstm.cli import cli\n"
        "errors = []\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        cli(args, standalone_mode=False)\n"
        "        errors.append(None)\n"
        "    except click.ClickException as exc:\n"
        "        errors.append(exc.format_message())\n"
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print(json.dumps({'errors': errors, 'heavy': heavy}))\n"
    )
    argv = json.dumps([args for args, _ in cases])
    out = subprocess.run(
        [sys.executable, "-c", script, argv], cwd=workspace, capture_output=True, text=True, check=True
    )
    report = json.loads(out.stdout)
    assert report["heavy"] == []
    for (args, message), error in zip(cases, report["errors"], strict=True):
        assert error is not None and message in error, (args, error)


def test_environment_variable_naming_a_missing_model(workspace: Path) -> None:
    before = snapshot(workspace)
    result = CliRunner().invoke(cli, ["generate"], env={ckpt.MODEL_ENV: "gone"})
    assert result.exit_code == 1
    assert result.stderr == "Error: gone: no such model directory\n"
    assert snapshot(workspace) == before


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_model(tmp_path_factory.mktemp("blend") / "model")


words = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzAÉëß -'1", max_size=12),
)


@settings(max_examples=150, deadline=None)
@given(word1=words, word2=words)
def test_blend_of_any_two_strings_is_a_result_or_a_clear_error(
    random_model: Path, word1: str, word2: str
) -> None:
    result = CliRunner().invoke(
        cli, ["blend", "--model", str(random_model), "--top", "3", "--", word1, word2]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    if result.exit_code == 0:
        assert 1 <= len(result.stdout.splitlines()) <= 3
    else:
        assert result.exit_code == 1
        assert result.stderr.splitlines()[-1].startswith("Error: ")
