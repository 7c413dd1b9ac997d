"""The Keras character LSTM: integer ids in, one-hot inside, next-symbol logits out.

The network uses only Keras' own layers, so ``keras.models.load_model`` reads a saved
model without charlstm. :class:`OneHot` stays registered only so that files saved by
older charlstm versions still load (``train --resume`` of an old run).
"""

from __future__ import annotations

import math

import numpy as np

from charlstm.keras_setup import keras
from charlstm.options import Architecture

ops = keras.ops

PAD_TARGET = -1  # target id of padded positions; the loss and metrics skip it


@keras.saving.register_keras_serializable(package="charlstm")
class OneHot(keras.layers.Layer):
    """Integer symbol ids to one-hot vectors: older models' layer (see :func:`one_hot_layer`)."""

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


def build_model(vocab_size: int, arch: Architecture, n_tags: int = 0) -> keras.Model:
    """Ids [batch, time] (and tag ids [batch, time]) -> logits [batch, time, vocab].

    One-hot symbols, the LSTM stack, a dense layer to logits. While training,
    ``arch.input_dropout`` hides each symbol type from a whole name with that
    probability (the same mask at every step), so the model cannot lean on any one
    letter it has seen; measured on the names benchmark it generalises better
    (README, Training). With ``n_tags`` the model
    has a second input, ``tags``: each row's tag id repeated at every step (so the
    model stays Keras' own layers, no broadcasting op). Its learned embedding
    (``tag_embedding``) joins each step's one-hot input (``arch.tag_input`` "step"),
    sets every layer's initial hidden and cell state through a dense layer ("state"),
    or both.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    inputs, x, initial = [ids], one_hot_layer(vocab_size)(ids), [None] * arch.layers
    if arch.input_dropout:  # one mask per name: a dropped symbol type is unseen in the whole name
        x = keras.layers.Dropout(
            arch.input_dropout, noise_shape=(None, 1, vocab_size), name="symbol_dropout"
        )(x)
    if n_tags:
        tags = keras.Input(shape=(None,), dtype="int32", name="tags")
        inputs.append(tags)
        embedded = keras.layers.Embedding(n_tags, arch.tag_dim, name="tag_embedding")(tags)
        if arch.tag_input in ("step", "both"):
            x = keras.layers.Concatenate(name="with_tag")([x, embedded])
        if arch.tag_input in ("state", "both"):
            vector = keras.layers.GlobalAveragePooling1D(name="tag_vector")(embedded)  # the same every step
            initial = [
                [
                    keras.layers.Dense(arch.hidden, activation="tanh", name=f"lstm{i}_h0")(vector),
                    keras.layers.Dense(arch.hidden, name=f"lstm{i}_c0")(vector),
                ]
                for i in range(arch.layers)
            ]
    for i in range(arch.layers):
        x = keras.layers.LSTM(
            arch.hidden,
            return_sequences=True,
            dropout=arch.dropout if i else 0.0,  # between layers, never on the symbols themselves
            recurrent_dropout=arch.recurrent_dropout,
            name=f"lstm{i}",
        )(x, initial_state=initial[i])
    if arch.dropout:
        x = keras.layers.Dropout(arch.dropout, name="out_dropout")(x)
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(inputs if n_tags else ids, logits, name="charlstm")


@keras.saving.register_keras_serializable(package="charlstm")
class AdamW(keras.optimizers.AdamW):
    """Keras' AdamW, decaying the weight matrices only: biases keep their values (an
    LSTM's forget-gate bias starts at 1 on purpose).

    The exclusion is set when the optimizer is built, which also happens when a saved
    training state is loaded, so a resumed run decays exactly the same variables.
    """

    def build(self, variables: list) -> None:
        self.exclude_from_weight_decay(var_names=["bias"])
        super().build(variables)


def compile_model(model: keras.Model, learning_rate: float, clipnorm: float, weight_decay: float) -> None:
    """AdamW (:class:`AdamW`) on the mean NLL over real symbols (padding ignored), with exact metrics."""
    model.compile(
        optimizer=AdamW(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_TARGET),
        metrics=[SymbolNLL("nll"), SymbolNLL("bpc", bits=True)],
    )


def _layer_arrays(model: keras.Model) -> dict[str, list[str]]:
    """Which ``weights.npz`` arrays each weighted layer holds, in Keras' weight order."""
    names = {layer.name for layer in model.layers}
    parts: dict[str, list[str]] = {"logits": ["out_kernel", "out_bias"]}
    for layer in model.layers:
        if isinstance(layer, keras.layers.LSTM):
            parts[layer.name] = [f"{layer.name}_{p}" for p in ("kernel", "recurrent", "bias")]
        elif layer.name.endswith(("_h0", "_c0")):
            parts[layer.name] = [f"{layer.name}_kernel", f"{layer.name}_bias"]
    if "tag_embedding" in names:
        parts["tag_embedding"] = ["tag_embedding"]
    return parts


def export_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """The arrays :class:`charlstm.npmodel.NumpyLSTM` needs, by name (``weights.npz``)."""
    arrays: dict[str, np.ndarray] = {}
    for layer, keys in _layer_arrays(model).items():
        arrays.update(zip(keys, (np.asarray(w) for w in model.get_layer(layer).get_weights()), strict=True))
    return arrays


def import_weights(model: keras.Model, arrays: dict[str, np.ndarray]) -> None:
    """Set ``model``'s weights from ``weights.npz`` arrays: the inverse of :func:`export_weights`."""
    for layer, keys in _layer_arrays(model).items():
        model.get_layer(layer).set_weights([arrays[key] for key in keys])
