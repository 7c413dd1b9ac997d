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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from charlstm import checkpoint as ckpt

if TYPE_CHECKING:
    import keras


def keras_from_arrays(arrays: dict[str, np.ndarray], meta: ckpt.ModelMeta) -> keras.Model:
    """The uncompiled, dropout-free inference model of ``meta`` holding the ``weights.npz`` arrays."""
    from charlstm.model import build_model, import_weights

    arch = replace(meta.architecture, dropout=0.0, input_dropout=0.0, recurrent_dropout=0.0)
    model = build_model(len(meta.alphabet), arch, n_tags=len(meta.tags))
    import_weights(model, arrays)
    return model


def inference_copy(model: keras.Model, meta: ckpt.ModelMeta) -> keras.Model:
    """An uncompiled, dropout-free copy of a training model, with its current weights."""
    from charlstm.model import export_weights

    return keras_from_arrays(export_weights(model), meta)


# The inference copy of each training model, built at its first save and refreshed
# with the current weights at the next ones (building costs more than saving).
_copies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def save_inference_model(path: str | Path, model: keras.Model, meta: ckpt.ModelMeta) -> None:
    """Atomically save :func:`inference_copy` of ``model`` as a ``.keras`` file."""
    copy = _copies.get(model)
    if copy is None:
        copy = _copies[model] = inference_copy(model, meta)
    else:
        for layer in copy.layers:
            if layer.trainable_weights:
                layer.set_weights(model.get_layer(layer.name).get_weights())
    ckpt.save_keras(path, copy)


def open_keras(model: ckpt.ModelDir) -> keras.Model:
    """The inference model of a model directory, rebuilt from its ``weights.npz``."""
    return keras_from_arrays(model.weights(), model.meta)
