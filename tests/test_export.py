"""Using a model without charlstm: portable model.keras, SavedModel export, the HTML page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

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

