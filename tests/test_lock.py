"""One training per model directory; reading while it trains sees whole checkpoints."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import NAMES, write_random_model

from charlstm import checkpoint as ckpt
from charlstm.cli import cli
from charlstm.errors import CharlstmError
from charlstm.lock import LOCK_FILE, lock_model_dir

HOLDER = """
import sys, time
from charlstm.lock import lock_model_dir
with lock_model_dir(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    """Another process holding the lock of ``tmp_path / 'model'``."""
    model = tmp_path / "model"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(model)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc, model
    finally:
        proc.kill()
        proc.wait()


def test_lock_records_the_pid_and_cleans_up(tmp_path: Path) -> None:
    model = tmp_path / "new"
    with lock_model_dir(model) as path:
        assert path == model
        assert (model / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert not model.exists()  # created for the run, and nothing was written in it
    model.mkdir()
    with lock_model_dir(model):
        (model / "model.json").write_text("{}")
    assert sorted(p.name for p in model.iterdir()) == ["model.json"]


def test_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    with lock_model_dir(tmp_path), lock_model_dir(tmp_path / "sub" / ".."):
        assert (tmp_path / LOCK_FILE).exists()
    assert not (tmp_path / LOCK_FILE).exists()


def test_taking_the_lock_clears_temp_files_of_a_killed_save(tmp_path: Path) -> None:
    write_random_model(tmp_path)
    (tmp_path / ckpt.STATE_DIR).mkdir()
    leftovers = [tmp_path / ".weights.npz.k2j4.tmp", tmp_path / ckpt.STATE_DIR / ".latest.keras.x1.tmp.keras"]
    for leftover in leftovers:
        leftover.write_bytes(b"half")
    kept = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p not in leftovers}
    warnings: list[str] = []
    with lock_model_dir(tmp_path, warn=warnings.append):
        assert not any(p.exists() for p in leftovers)
    assert warnings == [f"warning: {tmp_path}: removed 2 temporary file(s) left by an interrupted save"]
    assert {p: p.read_bytes() for p in kept} == kept


def test_a_file_cannot_be_locked_as_a_model_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(CharlstmError, match="is a file, expected a model directory"):
        with lock_model_dir(tmp_path / "file"):
            pass


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("mkdir", "cannot create the model directory: Permission denied"),
        ("open", "cannot create the lock file"),
    ],
)
def test_permission_denied_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, message: str
) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(*((Path, "mkdir") if target == "mkdir" else (os, "open")), denied)
    with pytest.raises(CharlstmError, match=message):
        with lock_model_dir(tmp_path / "model"):
            pass
    monkeypatch.undo()
    assert not (tmp_path / "model").exists()


def test_a_full_disk_still_locks_without_the_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", disk_full)
    with lock_model_dir(tmp_path):
        fd = os.open(tmp_path / LOCK_FILE, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_a_leftover_empty_lock_file_is_taken_silently(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("")
    warnings: list[str] = []
    with lock_model_dir(tmp_path, warn=warnings.append):
        pass
    assert warnings == []


def test_held_lock_is_refused_naming_the_holder_then_taken_over_when_it_dies(
    holder: tuple[subprocess.Popen, Path],
) -> None:
    proc, model = holder
    with pytest.raises(CharlstmError, match=f"process {proc.pid} is training this model directory"):
        with lock_model_dir(model):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    warnings: list[str] = []
    with lock_model_dir(model, warn=warnings.append):
        pass
    assert len(warnings) == 1
    assert f"taking over the lock of process {proc.pid}, which is gone" in warnings[0]


def test_train_refuses_a_locked_directory_before_touching_it(
    holder: tuple[subprocess.Popen, Path], names_file: Path
) -> None:
    proc, model = holder
    before = sorted(p.name for p in model.iterdir())
    result = CliRunner().invoke(cli, ["train", str(names_file), "--model", str(model)])
    assert result.exit_code == 1
    assert f"Error: {model}: process {proc.pid} is training this model directory" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in model.iterdir()) == before


# --- a real training in a subprocess -------------------------------------------------

SECOND_TRAINING = """
import sys
from charlstm.cli import cli
try:
    cli(["train", sys.argv[1], "--model", sys.argv[2], "--epochs", "1"], prog_name="charlstm")
finally:
    print("tensorflow imported:", "tensorflow" in sys.modules)
"""


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, Path, Path]]:
    """A tiny training that keeps checkpointing until killed (at most two minutes)."""
    root = tmp_path_factory.mktemp("training")
    names = root / "names.txt"
    names.write_text("\n".join(NAMES) + "\n")
    model = root / "model"
    log = open(root / "train.log", "w")
    args = "--epochs 100000 --patience 100000 --time-limit 120 --hidden 8 --layers 1".split()
    proc = subprocess.Popen(
        [sys.executable, "-m", "charlstm", "train", str(names), "--model", str(model), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        while not (model / ckpt.META_FILE).exists():
            assert proc.poll() is None, (root / "train.log").read_text()
            assert time.monotonic() < deadline, "training wrote no checkpoint in time"
            time.sleep(0.2)
        yield proc, model, names
    finally:
        proc.kill()
        proc.wait()
        log.close()


def test_second_training_is_refused_at_once_naming_the_first(
    training: tuple[subprocess.Popen, Path, Path],
) -> None:
    proc, model, names = training
    second = subprocess.run(
        [sys.executable, "-c", SECOND_TRAINING, str(names), str(model)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 1, second.stderr
    assert f"Error: {model}: process {proc.pid} is training this model directory" in second.stderr
    assert "Traceback" not in second.stderr
    assert "tensorflow imported: False" in second.stdout  # refused before the slow import
    assert proc.poll() is None  # the first one carries on


def test_reading_while_training_sees_whole_checkpoints(training: tuple[subprocess.Popen, Path, Path]) -> None:
    proc, model, names = training
    runner = CliRunner()
    epochs: set[int] = set()
    deadline = time.monotonic() + 60
    reads = 0
    while (len(epochs) < 3 or reads < 10) and time.monotonic() < deadline:
        for args in (
            ["info", "--json"],
            ["generate", "--n", "3", "--seed", str(reads)],
            ["blend", "brad", "angelina", "--top", "2"],
            ["evaluate", str(names)],
            ["score", "anna", "liam"],
        ):
            result = runner.invoke(cli, [*args, "--model", str(model)])
            assert result.exit_code == 0, result.output
            if args[0] == "info":
                epochs.add(json.loads(result.stdout)["epochs"])
            reads += 1
    assert proc.poll() is None
    assert len(epochs) >= 3, f"the training saved too rarely to test concurrent reading: {epochs}"


def test_killed_training_leaves_a_usable_model_and_a_lock_to_take_over(
    training: tuple[subprocess.Popen, Path, Path],
) -> None:
    proc, model, _ = training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    warnings: list[str] = []
    with lock_model_dir(model, warn=warnings.append):
        pass
    assert warnings and f"process {proc.pid}, which is gone" in warnings[0]
    result = CliRunner().invoke(cli, ["generate", "--model", str(model), "--n", "5", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split()) == 5
