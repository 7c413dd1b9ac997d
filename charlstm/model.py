"""The Keras character LSTM: integer ids in, one-hot inside, next-symbol logits out.

The network uses only Keras' own layers, so ``keras.models.load_model`` reads a saved
model without charlstm (see :mod:`charlstm.portable`). :class:`OneHot` stays
registered only so that files saved by older charlstm versions still load.
"""

from __future__ import annotations

import math

import numpy as np

from charlstm.keras_setup import import_keras
from charlstm.prepare import Architecture

keras = import_keras()
ops = keras.ops

PAD_TARGET = -1  # target id of padded positions; the loss and metrics skip it


@keras.saving.register_keras_serializable(package="charlstm")
class OneHot(keras.layers.Layer):
    """Integer symbol ids to one-hot vectors; kept only to read models saved before
    :func:`one_hot_layer` replaced it (e.g. ``train --resume`` of an old run)."""

    def __init__(self, depth: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.depth = depth

    def call(self, ids):
        return ops.one_hot(ops.cast(ids, "int32"), self.depth)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.depth)

    def get_config(self) -> dict:
        return {**super().get_config(), "depth": self.depth}


@keras.saving.register_keras_serializable(package="charlstm")
class SymbolNLL(keras.metrics.Metric):
    """Negative log-likelihood per real symbol, accumulated exactly over an epoch.

    Keras' running loss averages per batch; this sums every predicted symbol's NLL
    (end marker included, padding excluded) and divides by their count. With
    ``bits=True`` it reports bits per symbol instead of nats.
    """

    def __init__(self, name: str = "nll", bits: bool = False, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.bits = bits
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, PAD_TARGET), "float32")
        nll = ops.sparse_categorical_crossentropy(ops.maximum(y_true, 0), y_pred, from_logits=True)
        self.total.assign_add(ops.sum(ops.cast(nll, "float32") * mask))
        self.count.assign_add(ops.sum(mask))

    def result(self):
        nats = ops.divide_no_nan(self.total, self.count)
        return nats / math.log(2) if self.bits else nats

    def get_config(self) -> dict:
        return {"name": self.name, "bits": self.bits}


def one_hot_layer(vocab_size: int) -> keras.layers.Layer:
    """Ids to one-hot vectors with a Keras built-in: a frozen identity ``Embedding``.

    Its [vocab, vocab] identity table is saved with the model (no trainable
    parameter); the first LSTM's kernel stays [vocab, 4h] over one-hot symbols.
    """
    return keras.layers.Embedding(
        vocab_size, vocab_size, embeddings_initializer="identity", trainable=False, name="one_hot"
    )


def build_model(vocab_size: int, arch: Architecture) -> keras.Model:
    """Ids [batch, time] -> logits [batch, time, vocab]: one-hot, LSTM stack, dense."""
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = one_hot_layer(vocab_size)(ids)
    for i in range(arch.layers):
        x = keras.layers.LSTM(
            arch.hidden,
            return_sequences=True,
            dropout=arch.dropout if i else 0.0,  # between layers, never on the symbols themselves
            recurrent_dropout=arch.recurrent_dropout,
            name=f"lstm{i}",
        )(x)
    if arch.dropout:
        x = keras.layers.Dropout(arch.dropout, name="out_dropout")(x)
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(ids, logits, name="charlstm")


def compile_model(model: keras.Model, learning_rate: float = 3e-3, clipnorm: float = 1.0) -> None:
    """Adam on the mean NLL over real symbols (padding ignored), with exact metrics."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_TARGET),
        metrics=[SymbolNLL("nll"), SymbolNLL("bpc", bits=True)],
    )


def export_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """The arrays :class:`charlstm.npmodel.NumpyLSTM` needs, by name."""
    arrays: dict[str, np.ndarray] = {}
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    for i, layer in enumerate(lstms):
        kernel, recurrent, bias = (np.asarray(w) for w in layer.get_weights())
        arrays.update({f"lstm{i}_kernel": kernel, f"lstm{i}_recurrent": recurrent, f"lstm{i}_bias": bias})
    out_kernel, out_bias = model.get_layer("logits").get_weights()
    arrays.update({"out_kernel": np.asarray(out_kernel), "out_bias": np.asarray(out_bias)})
    return arrays
