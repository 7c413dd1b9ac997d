"""The Keras network: shapes, one-hot inside, exact NLL per real symbol, exported arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from charlstm import checkpoint as ckpt
from charlstm.model import (
    PAD_TARGET,
    OneHot,
    SymbolNLL,
    build_model,
    compile_model,
    export_weights,
    import_weights,
    keras,
)
from charlstm.npmodel import log_softmax
from charlstm.options import Architecture

VOCAB = 27


@pytest.mark.parametrize("layers, dropout", [(1, 0.0), (2, 0.3)])
def test_ids_in_logits_out_with_the_expected_parameter_count(layers: int, dropout: float) -> None:
    hidden = 6
    model = build_model(VOCAB, Architecture(hidden=hidden, layers=layers, dropout=dropout))
    ids = np.array([[0, 1, 2, 3], [0, 26, 25, 0]], np.int32)
    assert model(ids).shape == (2, 4, VOCAB)
    lstm = lambda inputs: 4 * hidden * (inputs + hidden + 1)  # noqa: E731
    expected = lstm(VOCAB) + (layers - 1) * lstm(hidden) + hidden * VOCAB + VOCAB
    frozen_one_hot = VOCAB * VOCAB  # the identity table that makes one-hot vectors
    assert model.count_params() == expected + frozen_one_hot
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == expected
    assert ("out_dropout" in [layer.name for layer in model.layers]) == bool(dropout)


def test_one_hot_layer_makes_one_hot_vectors() -> None:
    out = keras.ops.convert_to_numpy(OneHot(5)(np.array([[0, 3], [4, 1]])))
    assert out.shape == (2, 2, 5)
    np.testing.assert_array_equal(out.argmax(-1), [[0, 3], [4, 1]])
    np.testing.assert_array_equal(out.sum(-1), 1)


def test_input_dropout_hides_a_symbol_type_from_the_whole_name() -> None:
    model = build_model(VOCAB, Architecture(hidden=4, layers=1, dropout=0.0, input_dropout=0.5))
    hide = keras.Model(model.input, model.get_layer("symbol_dropout").output)
    ids = np.tile(np.array([[1, 2, 1, 2, 1, 2, 3, 3]], np.int32), (64, 1))
    out = keras.ops.convert_to_numpy(hide(ids, training=True)).max(-1)  # 0 where hidden, 2 where kept
    for symbol in (1, 2, 3):
        at = out[:, ids[0] == symbol]
        assert (at == at[:, :1]).all()  # hidden at every step of a name, or at none
    assert 0.3 < (out == 0).mean() < 0.7 and set(np.unique(out)) == {0.0, 2.0}
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(hide(ids, training=False)).max(-1), 1.0)


def test_adamw_decays_weight_matrices_not_biases_also_after_loading(tmp_path) -> None:
    model = build_model(VOCAB, Architecture(hidden=4, layers=1, dropout=0.0, input_dropout=0.0))
    compile_model(model, learning_rate=0.1, clipnorm=1.0, weight_decay=1.0)
    path = tmp_path / "m.keras"
    model.optimizer.build(model.trainable_weights)  # as in a saved training state
    ckpt.save_keras(path, model)
    for m in (model, keras.models.load_model(path)):
        weights = m.trainable_weights
        before = [keras.ops.convert_to_numpy(w.value).copy() for w in weights]
        m.optimizer.apply_gradients([(keras.ops.zeros(w.shape), w) for w in weights])  # decay alone
        for w, old in zip(weights, before, strict=True):
            expected = old if w.name == "bias" else old * (1 - 0.1 * 1.0)
            np.testing.assert_allclose(keras.ops.convert_to_numpy(w.value), expected, rtol=1e-5, atol=1e-7)


def test_symbol_nll_counts_real_symbols_only_in_nats_and_bits() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, VOCAB)).astype(np.float32)
    targets = np.array([[1, 2, 0, PAD_TARGET], [5, 0, PAD_TARGET, PAD_TARGET], [7, 8, 9, 0]])
    real = targets != PAD_TARGET
    expected = -log_softmax(logits)[real, targets[real]].mean()
    nats, bits = SymbolNLL("nll"), SymbolNLL("bpc", bits=True)
    for metric in (nats, bits):  # two updates: the totals accumulate, not the batch means
        metric.update_state(targets[:1], logits[:1])
        metric.update_state(targets[1:], logits[1:])
    assert float(nats.result()) == pytest.approx(expected, rel=1e-5)
    assert float(bits.result()) == pytest.approx(expected / math.log(2), rel=1e-5)


def test_exported_arrays_pass_the_checks_of_a_model_directory(tmp_path) -> None:
    model = build_model(VOCAB, Architecture(hidden=5, layers=2, dropout=0.0))
    arrays = export_weights(model)
    assert set(arrays) == {
        "lstm0_kernel", "lstm0_recurrent", "lstm0_bias", "lstm1_kernel", "lstm1_recurrent", "lstm1_bias",
        "out_kernel", "out_bias",
    }  # fmt: skip
    ckpt.write_arrays(tmp_path / "weights.npz", arrays)
    loaded = ckpt.load_weights(tmp_path / "weights.npz", VOCAB)
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)


@pytest.mark.parametrize("tag_input", ["step", "state", "both"])
def test_tagged_model_numpy_matches_keras_and_import_inverts_export(tag_input: str) -> None:
    from charlstm.npmodel import NumpyLSTM

    arch = Architecture(hidden=7, layers=2, dropout=0.0, tag_dim=3, tag_input=tag_input)
    model = build_model(VOCAB, arch, n_tags=4)
    rng = np.random.default_rng(1)
    for w in model.trainable_weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype(np.float32))
    ids = rng.integers(0, VOCAB, (5, 6)).astype(np.int32)
    tags = np.array([0, 1, 2, 3, 1])
    expected = np.asarray(model([ids, np.repeat(tags[:, None], 6, axis=1)], training=False))
    arrays = export_weights(model)
    np.testing.assert_allclose(NumpyLSTM.from_arrays(arrays).logits(ids, tags), expected, atol=1e-5)
    other = build_model(VOCAB, arch, n_tags=4)
    import_weights(other, arrays)
    for key, value in export_weights(other).items():
        np.testing.assert_array_equal(value, arrays[key])
    assert not np.allclose(expected[0], expected[4])  # the tag changes the predictions
