"""Using a model without charlstm (charlstm.portable, charlstm.export): model.keras in plain Keras,
SavedModel export. The HTML page has tests/test_webpage.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from charlstm import checkpoint as ckpt
from charlstm.evaluation import score_names

TEST_NAMES = ["anna", "olivia", "brangelina", "x"]

# Runs in a fresh interpreter that has Keras and TensorFlow but never imports charlstm.
PLAIN_KERAS = """
import json, sys
import numpy as np
import keras
model = keras.models.load_model(sys.argv[1])
sequences = json.loads(sys.argv[2])
out = []
for ids in sequences:
    logits = model.predict(np.array([ids], np.int32), verbose=0)[0]
    log_p = np.asarray(keras.ops.log_softmax(logits, axis=-1))
    out.append(float(sum(log_p[t, ids[t + 1]] for t in range(len(ids) - 1))))
assert not [m for m in sys.modules if m.startswith("charlstm")], "charlstm was imported"
assert not model.compiled and getattr(model, "optimizer", None) is None
print(json.dumps(out))
"""


def _plain_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_model_keras_loads_in_plain_keras_with_numpy_log_probs(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    model = ckpt.open_model(trained_model_dir)
    encoded = [model.alphabet.encode(name) for name in TEST_NAMES]
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_KERAS, str(trained_model_dir / ckpt.KERAS_FILE), json.dumps(encoded)],
        capture_output=True, text=True, env=_plain_env(), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    keras_log_probs = json.loads(done.stdout.splitlines()[-1])
    numpy_log_probs = [s.log_prob for s in score_names(model.lm(), model.alphabet, TEST_NAMES)]
    np.testing.assert_allclose(keras_log_probs, numpy_log_probs, atol=1e-4)
    assert all(lp < 0 for lp in keras_log_probs)


def test_model_keras_holds_only_keras_layers_and_no_compile_config(trained_model_dir: Path) -> None:
    import zipfile

    with zipfile.ZipFile(trained_model_dir / ckpt.KERAS_FILE) as archive:
        config = json.loads(archive.read("config.json"))
    assert not config.get("compile_config")
    modules = {layer["module"] for layer in config["config"]["layers"]}
    assert modules <= {"keras.layers"}, modules
    assert "charlstm>" not in json.dumps(config)  # no registered charlstm class
    # The training state keeps what --resume needs: the compiled model.
    state = json.loads((trained_model_dir / ckpt.STATE_DIR / "state.json").read_text())
    with zipfile.ZipFile(trained_model_dir / ckpt.STATE_DIR / state["model"]) as archive:
        assert json.loads(archive.read("config.json"))["compile_config"] is not None


def test_old_models_with_the_onehot_layer_still_load(trained_model_dir: Path, tmp_path: Path) -> None:
    from charlstm.model import OneHot, export_weights, keras

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = OneHot(27, name="one_hot")(ids)
    old = keras.Model(
        ids,
        keras.layers.Dense(27, name="logits")(keras.layers.LSTM(4, return_sequences=True, name="lstm0")(x)),
    )
    old.save(tmp_path / "old.keras")
    loaded = keras.models.load_model(tmp_path / "old.keras")
    for key, value in export_weights(old).items():
        np.testing.assert_array_equal(export_weights(loaded)[key], value)


def run(*args: str):
    from click.testing import CliRunner

    from charlstm.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _numpy_log_probs(model: ckpt.ModelDir, ids: np.ndarray, tag: int | None = None) -> np.ndarray:
    from charlstm.npmodel import log_softmax

    tags = None if tag is None else np.full(len(ids), tag)
    return log_softmax(model.lm().logits(ids, tags))


def _padded(model: ckpt.ModelDir, names: list[str]) -> np.ndarray:
    encoded = [model.alphabet.encode(name) for name in names]
    ids = np.zeros((len(encoded), max(map(len, encoded))), np.int32)
    for row, seq in zip(ids, encoded, strict=True):
        row[: len(seq)] = seq
    return ids


def test_export_savedmodel_serves_numpy_log_probs(random_model_dir: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    out = tmp_path / "savedmodel"
    result = run("export", str(random_model_dir), str(out), "--format", "savedmodel")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "SavedModel" in result.stderr
    model = ckpt.open_model(random_model_dir)
    ids = _padded(model, TEST_NAMES)
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    assert serve.structured_input_signature[1]["ids"].dtype == tf.int32
    log_probs = serve(ids=tf.constant(ids))["log_probs"].numpy()
    assert log_probs.shape == (*ids.shape, len(model.alphabet))
    np.testing.assert_allclose(log_probs, _numpy_log_probs(model, ids), atol=1e-5)
    # Per name (padding at the end changes nothing before it): charlstm score's figures.
    scores = score_names(model.lm(), model.alphabet, TEST_NAMES)
    for i, (row, s) in enumerate(zip(ids, scores, strict=True)):
        n = s.symbols  # letters and the end marker
        served = log_probs[i, np.arange(n), row[1 : n + 1]].sum()
        assert served == pytest.approx(s.log_prob, abs=1e-4)
    info = json.loads((out / "charlstm.json").read_text())
    assert info["alphabet"] == model.alphabet.to_json() and info["signature"]["outputs"].keys() == {
        "log_probs"
    }
    again = run("export", str(random_model_dir), str(out))  # never overwrites a directory
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_export_bundled_model_as_keras_file(tmp_path: Path) -> None:
    from charlstm.model import keras

    out = tmp_path / "names.keras"
    result = run("export", "bundled", str(out))  # the suffix picks the format; bundled has no model.keras
    assert result.exit_code == 0, result.output
    assert "(bundled)" in result.stderr
    model = ckpt.open_model(ckpt.bundled_model_dir())
    ids = _padded(model, TEST_NAMES)
    tag = model.meta.tags.index("male")  # the bundled model is tagged: a second input, the tag ids
    logits = keras.models.load_model(out).predict([ids, np.full(ids.shape, tag, np.int32)], verbose=0)
    expected = _numpy_log_probs(ckpt.open_model(ckpt.bundled_model_dir()), ids, tag)
    # float32 sums in another order: the 1e-4 the log-probabilities are checked to elsewhere
    np.testing.assert_allclose(np.asarray(keras.ops.log_softmax(logits)), expected, atol=1e-4)


def test_each_save_of_the_inference_model_holds_the_current_weights(tmp_path: Path) -> None:
    from charlstm.alphabet import Alphabet
    from charlstm.model import build_model, compile_model, export_weights, keras
    from charlstm.options import Architecture
    from charlstm.portable import save_inference_model

    arch = Architecture(hidden=4, layers=2, dropout=0.2, input_dropout=0.1, tag_input="both")
    model = build_model(27, arch, n_tags=2)
    compile_model(model, 1e-3, 1.0, 0.1)
    meta = ckpt.ModelMeta(alphabet=Alphabet(), architecture=arch, tags=["a", "b"])
    rng = np.random.default_rng(0)
    for _ in range(2):  # the second save reuses the first one's copy with new weights
        for w in model.trainable_weights:
            w.assign(rng.normal(0, 0.5, w.shape).astype(np.float32))
        save_inference_model(tmp_path / "model.keras", model, meta)
        loaded = keras.models.load_model(tmp_path / "model.keras")
        assert not loaded.compiled and not any(isinstance(x, keras.layers.Dropout) for x in loaded.layers)
        for key, value in export_weights(model).items():
            np.testing.assert_array_equal(export_weights(loaded)[key], value)
