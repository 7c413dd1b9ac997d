"""Training: checkpoints, resume, time limit, signals, weight averaging (tiny models)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from charlstm import checkpoint as ckpt
from charlstm.callbacks import AVERAGING_FLOOR, COSINE_FLOOR
from charlstm.cli import cli
from charlstm.errors import CharlstmError
from charlstm.options import TRAIN, Architecture, TrainOptions
from charlstm.training import train

# No dropout: deterministic.
TINY = ["--hidden", "8", "--layers", "1", "--batch-size", "16",
        "--dropout", "0", "--input-dropout", "0"]  # fmt: skip
CORPUS = Path(__file__).resolve().parent.parent / "data" / "names.txt"


def _state(model_dir: Path) -> dict:
    return json.loads((model_dir / ckpt.STATE_DIR / "state.json").read_text())


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_train_writes_history_state_and_tensorboard(names_file: Path, tmp_path: Path) -> None:
    result = _run("train", str(names_file), "--model", "m", "--epochs", "2", "--tensorboard", "tb", *TINY)
    assert result.exit_code == 0, result.output
    assert "epoch 2: train" in result.stderr and "symbols/s" in result.stderr and "(new)" in result.stderr
    assert result.stdout == ""
    history = (tmp_path / "m" / ckpt.HISTORY_FILE).read_text().splitlines()
    assert history[0].startswith("epoch,") and [r.split(",")[0] for r in history[1:]] == ["1", "2"]
    state = _state(tmp_path / "m")
    assert state["epoch"] == 2 and state["step"] == 2 * state["history"][0]["step"] > 0
    saved = sorted(p.name for p in (tmp_path / "m" / ckpt.STATE_DIR).iterdir())
    assert saved == sorted(["state.json", state["model"]])
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    meta = json.loads((tmp_path / "m" / ckpt.META_FILE).read_text())
    assert meta["training"]["epochs"] == 2 and meta["training"]["stopped"] == "epochs"


def test_resume_is_exact(names_file: Path, tmp_path: Path) -> None:
    """Two epochs straight equal one epoch, then a resumed one: weights and optimizer."""
    assert _run("train", str(names_file), "--model", "straight", "--epochs", "2", *TINY).exit_code == 0
    assert _run("train", str(names_file), "--model", "split", "--epochs", "1", *TINY).exit_code == 0
    result = _run("train", str(names_file), "--model", "split", "--resume", "--epochs", "2")
    assert result.exit_code == 0, result.output
    straight, split = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert split["epoch"] == 2 and [h["epoch"] for h in split["history"]] == [1, 2]
    assert split["history"][1]["val_nll"] == pytest.approx(straight["history"][1]["val_nll"], abs=1e-5)
    a = np.load(tmp_path / "straight" / ckpt.WEIGHTS_FILE)
    b = np.load(tmp_path / "split" / ckpt.WEIGHTS_FILE)
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5)


def test_resume_restores_learning_rate_and_early_stopping_counters(names_file: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    opts = TrainOptions(epochs=1, batch_size=16, architecture=Architecture(8, 1), samples_per_epoch=0)
    train(names_file, model_dir, opts, log=lambda m: None)
    state = _state(model_dir)
    state["learning_rate"] = 0.00123
    state["callbacks"]["EarlyStopping"]["wait"] = 1.0
    state["callbacks"]["EarlyStopping"]["best"] = 0.0  # nothing can beat it: wait grows
    (model_dir / ckpt.STATE_DIR / "state.json").write_text(json.dumps(state))
    opts = TrainOptions(epochs=5, patience=2, samples_per_epoch=0)
    explicit = frozenset({"epochs", "patience"})
    record = train(names_file, model_dir, opts, resume=True, explicit=explicit, log=lambda m: None)
    history = _state(model_dir)["history"]
    assert history[1]["learning_rate"] == pytest.approx(0.00123)
    assert record["stopped"] == "early stopping" and [h["epoch"] for h in history] == [1, 2]


def test_resume_refuses_another_architecture_or_alphabet(names_file: Path, tmp_path: Path) -> None:
    assert _run("train", str(names_file), "--model", "m", "--epochs", "1", *TINY).exit_code == 0
    result = _run("train", str(names_file), "--model", "m", "--resume", "--hidden", "9")
    assert result.exit_code == 1 and "--hidden 9 (saved: 8)" in result.stderr
    assert "Traceback" not in result.output
    meta_path = tmp_path / "m" / ckpt.META_FILE
    meta = json.loads(meta_path.read_text())
    meta["alphabet"] = meta["alphabet"][:-1]  # no "z"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CharlstmError, match="alphabet"):
        train(names_file, tmp_path / "m", TrainOptions(), resume=True, log=lambda m: None)


def test_state_is_saved_mid_epoch(names_file: Path, tmp_path: Path) -> None:
    opts = TrainOptions(
        epochs=1, batch_size=4, architecture=Architecture(8, 1), samples_per_epoch=0, state_interval=0.0
    )
    saved_steps: list[int] = []
    original = ckpt.write_json

    def spy(path, data):
        if Path(path).name == "state.json":
            saved_steps.append(data["step"])
        original(path, data)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ckpt, "write_json", spy)
        train(names_file, tmp_path / "m", opts, log=lambda m: None)
    n = _state(tmp_path / "m")["step"]
    assert n > 3 and saved_steps == [*range(1, n + 1), n]  # after every batch, then at epoch end
    assert len(list((tmp_path / "m" / ckpt.STATE_DIR).glob("step-*.keras"))) == 1


def test_failed_save_leaves_the_previous_checkpoint_whole(tmp_path: Path) -> None:
    class HalfWriter:
        def save(self, path: Path) -> None:
            Path(path).write_bytes(b"partial")
            raise OSError(28, "No space left on device")

    target = tmp_path / "model.keras"
    target.write_bytes(b"the good checkpoint")
    with pytest.raises(CharlstmError, match="No space left"):
        ckpt.save_keras(target, HalfWriter())
    assert target.read_bytes() == b"the good checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_time_limit_counts_from_start_and_keeps_a_margin(names_file: Path, tmp_path: Path) -> None:
    started = time.monotonic() - 2.0  # two seconds already spent on start-up
    opts = TrainOptions(
        epochs=10_000, batch_size=4, architecture=Architecture(8, 1), samples_per_epoch=0, time_limit=12.0
    )
    record = train(names_file, tmp_path / "m", opts, started=started, log=lambda m: None)
    assert record["stopped"] == "time limit"
    assert time.monotonic() - started < 12.0
    assert (tmp_path / "m" / ckpt.WEIGHTS_FILE).is_file()


@pytest.mark.parametrize(
    ("average_from", "floor"), [(1.0, COSINE_FLOOR), (TRAIN.average_from, AVERAGING_FLOOR)]
)
def test_cosine_anneals_by_the_last_epoch_when_it_comes_before_the_deadline(
    names_file: Path, tmp_path: Path, average_from: float, floor: float
) -> None:
    """A small file reaches --epochs long before --time-limit: the schedule still ends at its floor,
    1% of the starting rate, or 25% when weights are averaged."""
    opts = TrainOptions(
        epochs=3, batch_size=4, architecture=Architecture(8, 1), samples_per_epoch=0, time_limit=600.0,
        average_from=average_from,
    )  # fmt: skip
    record = train(names_file, tmp_path / "m", opts, log=lambda m: None)
    state = _state(tmp_path / "m")
    rates = [h["learning_rate"] for h in state["history"]]
    assert record["stopped"] == "epochs" and rates == sorted(rates, reverse=True)
    assert rates[0] < 0.9 * opts.learning_rate
    assert rates[-1] == pytest.approx(floor * opts.learning_rate, abs=0.02 * opts.learning_rate)
    assert (state["average"] is None) == (average_from == 1.0)


def _start_training(model_dir: Path) -> subprocess.Popen:
    args = ["train", str(CORPUS), "--model", str(model_dir), "--epochs", "1000", "--patience", "1000",
            "--hidden", "16", "--layers", "1", "--seed", "3"]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "charlstm", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_epochs(model_dir: Path, proc: subprocess.Popen, epochs: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = model_dir / ckpt.STATE_DIR / "state.json"
        if path.is_file() and _state(model_dir)["epoch"] >= epochs:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    pytest.fail("training did not reach the epoch in time")


def _resume_one_more_epoch(model_dir: Path) -> dict:
    before = _state(model_dir)
    more = str(before["epoch"] + 1)
    result = _run("train", str(CORPUS), "--model", str(model_dir), "--resume", "--epochs", more)
    assert result.exit_code == 0, result.output
    after = _state(model_dir)
    assert after["epoch"] == before["epoch"] + 1 and after["step"] > before["step"]
    assert [h["epoch"] for h in after["history"]] == list(range(1, after["epoch"] + 1))
    generated = _run("generate", "--model", str(model_dir), "--n", "3")
    assert generated.exit_code == 0 and len(generated.stdout.split()) == 3
    return after


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_saves_and_resumes(tmp_path: Path, signum: int, status: int) -> None:
    model_dir = tmp_path / "m"
    proc = _start_training(model_dir)
    _wait_for_epochs(model_dir, proc, 1)
    proc.send_signal(signum)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert time.monotonic() - sent < 10
    assert f"--model {model_dir} --resume" in err and "Traceback" not in err
    state = _state(model_dir)
    assert state["epoch"] >= 2  # the interrupted epoch is saved as a (shorter) epoch
    assert not list(model_dir.rglob(".*.tmp*"))
    _resume_one_more_epoch(model_dir)


def test_kill_loses_at_most_the_work_since_the_last_checkpoint(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    proc = _start_training(model_dir)
    _wait_for_epochs(model_dir, proc, 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    saved = _state(model_dir)
    after = _resume_one_more_epoch(model_dir)
    per_epoch = saved["history"][0]["step"]
    assert after["step"] == saved["step"] + per_epoch  # resumed from the last saved step


def _epoch_weights(model_dir: Path) -> list[np.ndarray]:
    """The weights of the last epoch, from the saved training state."""
    from charlstm.keras_setup import keras

    return keras.models.load_model(model_dir / ckpt.STATE_DIR / _state(model_dir)["model"]).get_weights()


def test_weight_average_is_the_mean_of_the_epochs_since_its_start_and_resumes(
    names_file: Path, tmp_path: Path
) -> None:
    """From --average-from on, every epoch's weights join a running mean, which resume continues."""
    model_dir = tmp_path / "m"
    opts = TrainOptions(
        epochs=2, batch_size=4, architecture=Architecture(8, 1), samples_per_epoch=0, time_limit=600.0,
        average_from=0.0,
    )  # fmt: skip
    train(names_file, model_dir, opts, log=lambda m: None)
    state = _state(model_dir)
    assert state["average_epochs"] == [1, 2] and state["average"] == "average-2.npz"
    two = ckpt.read_average(model_dir, ckpt.read_state(model_dir)[0])
    assert all("val_nll_averaged" in h for h in state["history"])
    first = state["history"][0]  # an average of one epoch is that epoch
    assert first["val_nll_averaged"] == pytest.approx(first["val_nll"], abs=1e-5)
    lines: list[str] = []
    opts = TrainOptions(epochs=3, samples_per_epoch=0, time_limit=600.0)
    train(names_file, model_dir, opts, resume=True, explicit=frozenset({"epochs"}), log=lines.append)
    state = _state(model_dir)
    assert state["average_epochs"] == [1, 3]
    assert sorted(p.name for p in (model_dir / ckpt.STATE_DIR).glob("average-*")) == ["average-3.npz"]
    three = ckpt.read_average(model_dir, ckpt.read_state(model_dir)[0])
    for a2, w3, a3 in zip(two, _epoch_weights(model_dir), three, strict=True):
        np.testing.assert_allclose(a3, (2 * a2 + w3) / 3, atol=1e-6)
    assert any(line.startswith("  weights averaged over epochs 1-3: val ") for line in lines)


def test_a_better_average_is_saved_as_the_model(
    names_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the average validates better than the epoch, weights.npz and model.keras hold the average."""
    from charlstm.callbacks import WeightAverage

    validate = WeightAverage.on_epoch_end

    def better(self, epoch, logs=None):  # the average's validation NLL, made to win every epoch
        validate(self, epoch, logs)
        if self.val_nll is not None:
            self.val_nll = -float(epoch)

    monkeypatch.setattr(WeightAverage, "on_epoch_end", better)
    model_dir = tmp_path / "m"
    result = _run("train", str(names_file), "--model", str(model_dir), "--epochs", "3", "--time-limit", "600",
                  "--average-from", "0.5", *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    state = _state(model_dir)
    first = state["average_epochs"][0]
    assert first > 1 and "val_nll_averaged" not in state["history"][first - 2]
    assert "kept the weights averaged over epochs" in result.stderr
    saved = np.load(model_dir / ckpt.WEIGHTS_FILE)
    average = ckpt.read_average(model_dir, ckpt.read_state(model_dir)[0])
    np.testing.assert_allclose(saved["out_kernel"], average[-2], atol=1e-7)
    assert not np.allclose(saved["out_kernel"], _epoch_weights(model_dir)[-2])
    meta = json.loads((model_dir / ckpt.META_FILE).read_text())
    assert meta["training"]["averaged_epochs"] == [first, 3] and meta["training"]["best_val_nll"] == -2.0
    info = _run("info", "--model", str(model_dir))
    assert f"averaged_epochs: [{first}, 3]" in info.stdout


def test_average_from_1_or_the_plateau_schedule_averages_nothing(names_file: Path, tmp_path: Path) -> None:
    for name, extra in (("off", ["--time-limit", "600", "--average-from", "1"]), ("plateau", [])):
        result = _run("train", str(names_file), "--model", name, "--epochs", "2", *extra, *TINY)
        assert result.exit_code == 0, result.output
        state = _state(tmp_path / name)
        assert state["average"] is None and "averaged" not in result.stderr
        assert not any("val_nll_averaged" in h for h in state["history"])
