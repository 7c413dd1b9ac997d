"""Models that plain Keras and TensorFlow read without charlstm installed.

``model.keras`` in a model directory is the *inference* model of the best weights:

* input ``ids``: int32 [batch, time], symbol ids (0 is the end marker ``\\n`` that
  starts and ends a name, then the alphabet of ``model.json`` in order);
* a frozen identity ``Embedding`` (layer ``one_hot``) makes each id the one-hot
  vector [vocab] the first LSTM reads, so its kernel is [vocab, 4h];
* LSTM layers ``lstm0``, ``lstm1``, ... and a ``Dense`` layer ``logits``;
* output: next-symbol logits [batch, time, vocab] (``log_softmax`` them).

It holds only Keras' own layers, no dropout and no compile configuration (no
charlstm loss, metric or optimizer), so ``keras.models.load_model("model.keras")``
works anywhere Keras 3 does. It is rebuilt from the numpy arrays of ``weights.npz``,
which is also how a bundled model (shipped without ``model.keras``) is exported.
The training state for ``--resume`` (``state/step-N.keras``) keeps the compiled
model with its optimizer and needs charlstm to load.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from charlstm import checkpoint as ckpt
from charlstm.errors import CharlstmError

if TYPE_CHECKING:
    import keras


def keras_from_arrays(arrays: dict[str, np.ndarray], vocab_size: int) -> keras.Model:
    """The uncompiled inference model holding the ``weights.npz`` arrays ``arrays``."""
    from charlstm.model import build_model
    from charlstm.prepare import Architecture

    layers = sum(1 for key in arrays if key.startswith("lstm") and key.endswith("_kernel"))
    hidden = {arrays[f"lstm{i}_recurrent"].shape[0] for i in range(layers)}
    if len(hidden) != 1:
        raise CharlstmError(
            f"cannot rebuild a Keras model whose LSTM layers differ in size ({sorted(hidden)})"
        )
    model = build_model(vocab_size, Architecture(hidden=hidden.pop(), layers=layers, dropout=0.0))
    for i in range(layers):
        model.get_layer(f"lstm{i}").set_weights(
            [arrays[f"lstm{i}_{part}"] for part in ("kernel", "recurrent", "bias")]
        )
    model.get_layer("logits").set_weights([arrays["out_kernel"], arrays["out_bias"]])
    return model


def inference_copy(model: keras.Model) -> keras.Model:
    """An uncompiled, dropout-free copy of a training model, with its current weights."""
    from charlstm.model import export_weights

    arrays = export_weights(model)
    return keras_from_arrays(arrays, arrays["out_bias"].shape[-1])


# The inference copy of each training model, built at its first save and refreshed
# with the current weights at the next ones (building costs more than saving).
_copies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def save_inference_model(path: str | Path, model: keras.Model) -> None:
    """Atomically save :func:`inference_copy` of ``model`` as a ``.keras`` file."""
    copy = _copies.get(model)
    if copy is None:
        copy = _copies[model] = inference_copy(model)
    else:
        for layer in copy.layers:
            if layer.trainable_weights:
                layer.set_weights(model.get_layer(layer.name).get_weights())
    ckpt.save_keras(path, copy)


def open_keras(model: ckpt.ModelDir) -> keras.Model:
    """The inference model of a model directory, rebuilt from its ``weights.npz``."""
    arrays = ckpt.load_weights(model.path / ckpt.WEIGHTS_FILE, len(model.alphabet))
    return keras_from_arrays(arrays, len(model.alphabet))
