"""tf.distribute strategies: mirrored over logical CPUs, multiworker over local processes."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import NAMES

from charlstm.cli import cli
from charlstm.cluster import LOGICAL_CPUS_ENV
from charlstm.data import split_names


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_mirrored_training_on_two_logical_cpus_converges_and_loads_on_one_device(tmp_path: Path) -> None:
    # A fresh process: the CPU can only be split into logical devices before TensorFlow starts.
    data = tmp_path / "names.txt"
    data.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    model = tmp_path / "mirrored"
    args = ["train", str(data), "--model", str(model), "--strategy", "mirrored", "--epochs", "4",
            "--hidden", "16", "--layers", "1", "--batch-size", "16", "--seed", "3"]  # fmt: skip
    env = {**os.environ, LOGICAL_CPUS_ENV: "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "charlstm", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "strategy mirrored: 2 replica(s)" in proc.stderr
    with (model / "history.csv").open() as fh:
        history = list(csv.DictReader(fh))
    nll = [float(row["nll"]) for row in history]
    assert len(nll) == 4 and nll[-1] < nll[0] - 0.05  # training converges

    # The validation NLL summed over both replicas (padding rows included) is exact:
    # numpy inference on the held-out names gives the same figure.
    val = tmp_path / "val.txt"
    val.write_text("\n".join(split_names(NAMES, 0.1, 3)[1]) + "\n", encoding="utf-8")
    evaluated = json.loads(run("evaluate", "--model", str(model), str(val), "--json").stdout)
    best = min(float(row["val_nll"]) for row in history)  # weights.npz holds the best epoch
    assert evaluated["nll_per_char"] == pytest.approx(best, abs=1e-4)

    names = run("generate", "--model", str(model), "--n", "5", "--seed", "1").stdout.split()
    assert len(names) == 5

    from charlstm.model import export_weights, keras

    single = keras.models.load_model(model / "model.keras")  # no strategy in this process
    saved = np.load(model / "weights.npz")
    for key, value in export_weights(single).items():
        np.testing.assert_array_equal(value, saved[key])
    ids = np.array([[0, 1, 14, 14]], np.int32)
    assert single.predict(ids, verbose=0).shape == (1, 4, 27)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_multiworker_training_on_two_local_workers_matches_mirrored_and_loads_on_one_device(
    tmp_path: Path,
) -> None:
    data = tmp_path / "names.txt"
    data.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    args = [sys.executable, "-m", "charlstm", "train", str(data), "--epochs", "2", "--hidden", "8",
            "--layers", "1", "--dropout", "0", "--input-dropout", "0", "--batch-size", "8",
            "--seed", "3"]  # fmt: skip
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    # Both workers get the same --model, as on a shared file system: only the chief uses it.
    models = [tmp_path / "shared", tmp_path / "shared", tmp_path / "mirrored"]
    envs = [
        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        for i in (0, 1)
    ]
    envs.append({LOGICAL_CPUS_ENV: "2"})  # mirrored: the same split of each batch, on one machine
    strategies = ["multiworker", "multiworker", "mirrored"]
    procs = [
        subprocess.Popen(
            [*args, "--strategy", strategy, "--model", str(model)],
            env={**os.environ, **env},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for strategy, env, model in zip(strategies, envs, models, strict=True)
    ]
    try:
        errs = [proc.communicate(timeout=180)[1] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [0, 0, 0], errs
    assert "worker 0 of 2 (the chief)" in errs[0] and "worker 1 of 2 (not the chief" in errs[1]
    assert "into the chief's model directory" in errs[1]
    assert "Traceback" not in errs[0] + errs[1]

    chief = models[0]
    assert {p.name for p in chief.iterdir()} == {
        "model.json", "weights.npz", "model.keras", "training-names.txt", "history.csv", "state"
    }  # fmt: skip

    def history(model: Path) -> list[dict]:
        with (model / "history.csv").open() as fh:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]

    workers, mirrored = history(chief), history(models[2])
    assert len(workers) == 2 and all(np.isfinite(row["val_nll"]) for row in workers)
    assert workers[-1]["nll"] < workers[0]["nll"] and workers[-1]["val_nll"] < workers[0]["val_nll"]
    for key in ("step", "nll", "loss", "val_nll", "val_loss"):  # same batches, split the same way
        assert [row[key] for row in workers] == pytest.approx([row[key] for row in mirrored], abs=1e-5)

    val = tmp_path / "val.txt"
    val.write_text("\n".join(split_names(NAMES, 0.1, 3)[1]) + "\n", encoding="utf-8")
    evaluated = json.loads(run("evaluate", "--model", str(chief), str(val), "--json").stdout)
    best = min(row["val_nll"] for row in workers)  # weights.npz holds the best epoch
    assert evaluated["nll_per_char"] == pytest.approx(best, abs=1e-4)
    assert len(run("generate", "--model", str(chief), "--n", "5", "--seed", "1").stdout.split()) == 5

    from charlstm.model import export_weights, keras

    single = keras.models.load_model(chief / "model.keras")  # no strategy in this process
    saved = np.load(chief / "weights.npz")
    for key, value in export_weights(single).items():
        np.testing.assert_array_equal(value, saved[key])
