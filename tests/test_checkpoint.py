"""Model directories: atomic writes under failure, and damaged directories refused clearly."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_random_model

from charlstm import checkpoint as ckpt
from charlstm.cli import cli
from charlstm.errors import CharlstmError


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.rglob("*") if ".tmp" in p.name]


def fail_with(code: int) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        tmp.write_bytes(b"half a fi")  # the disk fills up part way through
        raise OSError(code, os.strerror(code))

    return write


@pytest.mark.parametrize(
    ("code", "message"), [(errno.ENOSPC, "No space left on device"), (errno.EACCES, "Permission denied")]
)
def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, code: int, message: str) -> None:
    target = tmp_path / "model.json"
    ckpt.write_json(target, {"epoch": 1})
    with pytest.raises(CharlstmError, match=f"model.json: cannot save: {message}"):
        ckpt.atomic_write(target, fail_with(code))
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["model.json"]


def test_failure_at_fsync_or_rename_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "weights.npz"
    ckpt.write_arrays(target, {"a": np.arange(3)})
    before = target.read_bytes()

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    for name in ("fsync", "replace"):
        with monkeypatch.context() as m:
            m.setattr(os, name, disk_full)
            with pytest.raises(CharlstmError, match="No space left on device"):
                ckpt.write_arrays(target, {"a": np.arange(1000)})
        assert target.read_bytes() == before
        assert os.listdir(tmp_path) == ["weights.npz"]


def test_no_room_for_even_a_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(CharlstmError, match=r"history\.csv: cannot save: Permission denied"):
        ckpt.write_text(tmp_path / "history.csv", "epoch\n")
    assert os.listdir(tmp_path) == []


def test_interrupt_mid_write_removes_the_temp_and_propagates(tmp_path: Path) -> None:
    target = tmp_path / "training-names.txt"
    ckpt.write_text(target, "anna\n")

    def interrupted(tmp: Path) -> None:
        tmp.write_text("bo")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ckpt.atomic_write(target, interrupted)
    assert target.read_text() == "anna\n"
    assert os.listdir(tmp_path) == ["training-names.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_directory(tmp_path: Path) -> None:
    target = tmp_path / "model.json"
    ckpt.write_json(target, {"epoch": 1})
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(CharlstmError, match="Permission denied"):
            ckpt.write_json(target, {"epoch": 2})
    finally:
        tmp_path.chmod(0o755)
    assert json.loads(target.read_text()) == {"epoch": 1}


def test_written_files_get_the_usual_mode(tmp_path: Path) -> None:
    ckpt.write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_two_layer_random_model_opens_and_loads(tmp_path: Path) -> None:
    model = ckpt.open_model(write_random_model(tmp_path / "m", hidden=(16, 8)))
    assert model.lm().hidden_sizes == [16, 8]


def _mutate(path: Path, change: Callable[[dict], None]) -> None:
    arrays = dict(np.load(path / ckpt.WEIGHTS_FILE))
    change(arrays)
    with open(path / ckpt.WEIGHTS_FILE, "wb") as fh:
        np.savez(fh, **arrays)


def _set(key: str, value: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict], None]:
    def change(arrays: dict) -> None:
        arrays[key] = value(arrays[key])

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("lstm1_bias"), "lstm1_bias is missing"),
        (lambda a: a.pop("out_kernel"), "out_kernel is missing"),
        (lambda a: [a.pop(k) for k in list(a) if k.startswith("lstm")], "no LSTM layer"),
        (_set("lstm1_kernel", lambda x: x[:5]), r"lstm1_kernel has shape \(5, 32\), expected \(16, 32\)"),
        (
            _set("out_kernel", lambda x: x[:, :20]),
            "weights are for 20 symbols but the alphabet in model.json has 27",
        ),
        (_set("lstm0_kernel", lambda x: x[:20]), "weights are for 20 symbols"),
        (_set("lstm0_recurrent", lambda x: x[0]), "lstm0_recurrent has shape"),
        (_set("lstm0_bias", lambda x: x * np.nan), "not finite numbers"),
        (_set("out_bias", lambda x: x * np.inf), "not finite numbers"),
        (_set("out_bias", lambda x: x.astype(np.int64)), "not finite numbers"),
        (_set("out_bias", lambda x: np.array([object()] * len(x))), "unreadable or damaged weights"),
    ],
)
def test_damaged_weights_are_refused_naming_the_file(tmp_path: Path, change: Callable, message: str) -> None:
    path = write_random_model(tmp_path / "m", hidden=(16, 8))
    _mutate(path, change)
    model = ckpt.open_model(path)
    with pytest.raises(CharlstmError, match=message) as info:
        model.lm()
    assert str(info.value).startswith(str(path / ckpt.WEIGHTS_FILE))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("format_version"), "no valid format_version"),
        (lambda m: m.update(format_version=True), "no valid format_version"),
        (lambda m: m.update(format_version=0), "no valid format_version"),
        (lambda m: m.update(format_version=ckpt.FORMAT_VERSION + 1), "is newer than this charlstm"),
        (lambda m: m.pop("alphabet"), "no alphabet"),
        (lambda m: m.update(alphabet=["\n", "ab"]), "damaged alphabet"),
        (lambda m: m.update(alphabet=list("abc")), "damaged alphabet"),
        (lambda m: m.update(training=[1, 2]), "training is not an object"),
        (lambda m: m.update(architecture="big"), "architecture is not an object"),
    ],
)
def test_damaged_metadata_is_refused_naming_the_file(tmp_path: Path, change: Callable, message: str) -> None:
    path = write_random_model(tmp_path / "m")
    meta = json.loads((path / ckpt.META_FILE).read_text())
    change(meta)
    (path / ckpt.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(CharlstmError, match=message) as info:
        ckpt.open_model(path)
    assert str(info.value).startswith(str(path / ckpt.META_FILE))


def test_unreadable_training_names(tmp_path: Path) -> None:
    path = write_random_model(tmp_path / "m")
    (path / ckpt.NAMES_FILE).write_bytes(b"anna\n\xff\xfe\n")
    with pytest.raises(CharlstmError, match=r"training-names\.txt: unreadable"):
        ckpt.open_model(path).training_names()


def test_disk_full_while_training_keeps_the_previous_checkpoint(
    trained_model_dir: Path, names_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train` fails with a one-line error when saving weights fails; the old model still serves."""
    model = tmp_path / "model"
    shutil.copytree(trained_model_dir, model)
    kept = {name: (model / name).read_bytes() for name in (ckpt.WEIGHTS_FILE, ckpt.META_FILE)}

    def disk_full(file: object, *args: object, **kwargs: object) -> None:
        file.write(b"PK\x03\x04 half")  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    args = ["train", str(names_file), "--model", str(model), "--overwrite", "--epochs", "1"]
    result = CliRunner().invoke(cli, [*args, "--hidden", "16", "--layers", "1", "--batch-size", "16"])
    monkeypatch.undo()

    assert result.exit_code == 1, result.output
    assert "weights.npz: cannot save: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert {name: (model / name).read_bytes() for name in kept} == kept
    assert no_temp_files(model)
    assert not (model / ".lock").exists()
    generated = CliRunner().invoke(cli, ["generate", "--model", str(model), "--n", "3", "--seed", "1"])
    assert generated.exit_code == 0, generated.output
    assert len(generated.stdout.split()) == 3


def test_adopt_training_replaces_the_target_files_and_state_with_the_sources(tmp_path: Path) -> None:
    first, second = tmp_path / "m", tmp_path / "m" / ckpt.RETRY_DIR
    for model, step in ((first, 10), (second, 20)):
        (model / ckpt.STATE_DIR).mkdir(parents=True)
        for name in (ckpt.META_FILE, ckpt.WEIGHTS_FILE, ckpt.HISTORY_FILE, ckpt.NAMES_FILE):
            (model / name).write_text(f"{name} of step {step}")
        (model / ckpt.STATE_DIR / f"step-{step}.keras").write_text("model")
        (model / ckpt.STATE_DIR / ckpt.STATE_FILE).write_text(json.dumps({"model": f"step-{step}.keras"}))
    ckpt.adopt_training(second, first)
    assert not second.exists()
    assert (first / ckpt.META_FILE).read_text() == f"{ckpt.META_FILE} of step 20"
    assert (first / ckpt.NAMES_FILE).read_text() == f"{ckpt.NAMES_FILE} of step 20"
    assert sorted(p.name for p in (first / ckpt.STATE_DIR).iterdir()) == [ckpt.STATE_FILE, "step-20.keras"]
