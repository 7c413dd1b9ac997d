"""Scale: alphabets derived from the training file, compact encoding, tf.distribute strategies."""

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
from conftest import NAMES, write_random_model
from hypothesis import given
from hypothesis import strategies as st

from charlstm import data
from charlstm.alphabet import Alphabet, derive
from charlstm.cli import cli
from charlstm.cluster import LOGICAL_CPUS_ENV
from charlstm.data import encode_names, split_names
from charlstm.errors import CharlstmError
from charlstm.lock import LOCK_FILE
from charlstm.options import TrainOptions
from charlstm.preflight import preflight

CYRILLIC = [
    "Йорк", "Анна", "Мария", "Анна-Мария", "Ёжик", "Сергей", "Андрей", "Алексей", "Николай",
    "Дмитрий", "Зоя", "Юлия", "Яков", "Эмма", "Фёдор", "Жанна", "Цветана", "Шура", "Щукин",
    "Чеслав", "Майя", "Ирина", "Ольга", "Татьяна", "Василий", "Пётр", "Геннадий", "Борис",
]  # fmt: skip


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_derived_alphabet_keeps_letters_whole() -> None:
    alphabet = derive(["Йорк", "Zoë", "Анна-Мария", "\tx"])
    assert alphabet.symbols[0] == "\n" and list(alphabet.symbols[1:]) == sorted(alphabet.symbols[1:])
    assert {"й", "ë", "-", "м"} <= set(alphabet.symbols) and "\t" not in alphabet.symbols
    assert alphabet.normalize("ЙОРК") == "йорк"  # not "иорк": no accent stripping
    assert alphabet.normalize("Zoe\u0308") == "zoë"  # decomposed input is composed (NFC)
    assert Alphabet().normalize("Zoë") == "zoe"  # the default a-z alphabet still folds accents


@given(st.lists(st.text(alphabet="abcxyz-йё", min_size=1, max_size=12), max_size=30))
def test_vectorised_encoding_matches_name_by_name(names: list[str]) -> None:
    alphabet = Alphabet("\nabcxyz-йё")
    flat, lengths = encode_names(names, alphabet)
    assert flat.tolist() == [i for n in names for i in alphabet.encode(n)]
    assert lengths.tolist() == [len(n) + 2 for n in names]


def test_encoding_in_chunks_matches_and_names_the_name_with_a_foreign_symbol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(data, "_ENCODE_CHUNK", 2)
    names = ["ab", "c", "zz", "y", "abc"]
    alphabet = Alphabet()
    flat, lengths = encode_names(names, alphabet)
    assert flat.tolist() == [i for n in names for i in alphabet.encode(n)]
    assert lengths.tolist() == [4, 3, 4, 3, 5]
    with pytest.raises(CharlstmError, match="'b1' contains symbols outside the alphabet: '1'"):
        encode_names([*names, "b1"], alphabet)


@pytest.fixture(scope="module")
def cyrillic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cyrillic")
    (root / "ru.txt").write_text("\n".join(CYRILLIC) + "\n", encoding="utf-8")
    model = root / "model"
    result = run(
        "train", str(root / "ru.txt"), "--model", str(model), "--alphabet", "auto", "--epochs", "2",
        "--hidden", "16", "--layers", "1", "--batch-size", "8", "--val-fraction", "0.2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return model


def test_auto_alphabet_is_stored_and_used_by_every_command(cyrillic_model: Path) -> None:
    m = ["--model", str(cyrillic_model)]
    alphabet = json.loads(run("info", *m, "--json").stdout)["alphabet"]
    assert "й" in alphabet and "ё" in alphabet and "-" in alphabet
    names = run("generate", *m, "--n", "30", "--seed", "1", "--allow-duplicates").stdout.split()
    assert len(names) == 30
    assert all(set(n.lower()) <= set("-абвгдеёжзийклмнопрстуфхцчшщъыьэюя") for n in names)
    assert any(set(n.lower()) & set("абвгдеёжзийклмнопрстуфхцчшщэюя") for n in names)
    prefixed = run("generate", *m, "--n", "5", "--seed", "2", "--prefix", "ЙО").stdout.split()
    assert len(prefixed) == 5 and all(n.startswith("Йо") for n in prefixed)
    scored = run("score", *m, "Фёдор", "Анна-Мария")
    assert scored.exit_code == 0 and scored.stdout.startswith("Фёдор\t")
    ru = cyrillic_model.parent / "ru.txt"
    evaluated = run("evaluate", *m, str(ru), "--json")
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["names"] == len(CYRILLIC)


def test_auto_alphabet_model_refuses_letters_outside_it(cyrillic_model: Path) -> None:
    m = ["--model", str(cyrillic_model)]
    result = run("generate", *m, "--prefix", "Ивq")
    assert result.exit_code == 2 and "letters outside the model's alphabet" in result.stderr
    assert "'q'" in result.stderr
    result = run("score", *m, "Anna")
    assert result.exit_code == 2 and "'Anna' is not a name in the model's alphabet" in result.stderr


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "set TF_CONFIG on each machine"),
        ("{cluster", "TF_CONFIG: not valid JSON"),
        (
            '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}',
            "not in the cluster",
        ),
        ('{"cluster": {"ps": ["localhost:1"]}, "task": {"type": "ps"}}', "only 'chief' and 'worker' jobs"),
    ],
)
def test_multiworker_without_a_usable_tf_config_is_a_clear_error(
    names_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tf_config: str | None, message: str
) -> None:
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    model = tmp_path / "m"
    result = run("train", str(names_file), "--strategy", "multiworker", "--model", str(model))
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output and not model.exists()


def test_only_the_multiworker_chief_locks_and_checks_its_model_directory(
    names_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = write_random_model(tmp_path / "shared")  # already holds a model
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    opts = TrainOptions(strategy="multiworker")

    def worker(index: int) -> None:
        task = {"type": "worker", "index": index}
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))

    worker(0)  # the chief
    with pytest.raises(CharlstmError, match="already holds a model"):
        with preflight(names_file, model, opts):
            pass
    worker(1)
    before = sorted(model.iterdir())
    with preflight(names_file, model, opts, log=lambda message: None) as run:
        assert not run.chief and run.model_dir.is_dir() and run.model_dir != model
        assert not (model / LOCK_FILE).exists()
        assert len(run.train_names) + len(run.val_names) == len(NAMES)
    assert not run.model_dir.exists() and sorted(model.iterdir()) == before


def test_bad_logical_cpu_count_is_a_clear_error(names_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOGICAL_CPUS_ENV, "two")
    result = run("train", str(names_file), "--model", "m")
    assert result.exit_code == 1 and f"{LOGICAL_CPUS_ENV}='two'" in result.stderr


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
            "--layers", "1", "--dropout", "0", "--batch-size", "8", "--seed", "3"]  # fmt: skip
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
