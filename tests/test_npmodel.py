"""The numpy LSTM against Keras and against a plain float64 reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from charlstm.npmodel import NumpyLSTM, log_softmax

VOCAB = 27


def random_arrays(hidden: tuple[int, ...], scale: float = 0.5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays, width = {}, VOCAB
    for i, h in enumerate(hidden):
        arrays[f"lstm{i}_kernel"] = rng.normal(0, scale, (width, 4 * h)).astype(np.float32)
        arrays[f"lstm{i}_recurrent"] = rng.normal(0, scale, (h, 4 * h)).astype(np.float32)
        arrays[f"lstm{i}_bias"] = rng.normal(0, scale, 4 * h).astype(np.float32)
        width = h
    arrays["out_kernel"] = rng.normal(0, scale, (width, VOCAB)).astype(np.float32)
    arrays["out_bias"] = rng.normal(0, scale, VOCAB).astype(np.float32)
    return arrays


def reference_logits(arrays: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """Textbook LSTM (Keras gate order i, f, c, o) in float64, one step at a time."""
    a = {k: v.astype(np.float64) for k, v in arrays.items()}
    layers = sum(k.endswith("_recurrent") for k in a)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    h = [np.zeros((len(ids), a[f"lstm{i}_recurrent"].shape[0])) for i in range(layers)]
    c = [x.copy() for x in h]
    out = []
    for t in range(ids.shape[1]):
        x = np.eye(VOCAB)[ids[:, t]]
        for i in range(layers):
            z = x @ a[f"lstm{i}_kernel"] + h[i] @ a[f"lstm{i}_recurrent"] + a[f"lstm{i}_bias"]
            gi, gf, gc, go = np.split(z, 4, axis=1)
            c[i] = sigmoid(gf) * c[i] + sigmoid(gi) * np.tanh(gc)
            h[i] = x = sigmoid(go) * np.tanh(c[i])
        out.append(x @ a["out_kernel"] + a["out_bias"])
    return np.stack(out, axis=1)


@pytest.mark.parametrize("hidden", [(8,), (16, 12), (5, 7, 9)])
def test_matches_float64_reference(hidden: tuple[int, ...]) -> None:
    arrays = random_arrays(hidden, seed=len(hidden))
    ids = np.random.default_rng(1).integers(0, VOCAB, (11, 13))
    got = NumpyLSTM.from_arrays(arrays).logits(ids)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference_logits(arrays, ids), atol=1e-5, rtol=1e-5)


def test_saturated_gates_stay_exact_and_silent() -> None:
    """Huge pre-activations overflow exp inside the fast gates; results must not suffer."""
    arrays = random_arrays((6, 6), seed=3)
    for i in range(2):  # gate pre-activations near +-100: exp(100) overflows float32
        bias = arrays[f"lstm{i}_bias"]
        arrays[f"lstm{i}_bias"] = np.where(np.arange(bias.size) % 2, 100, -100).astype(np.float32) + bias
    ids = np.random.default_rng(2).integers(0, VOCAB, (9, 7))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = NumpyLSTM.from_arrays(arrays).logits(ids)
    np.testing.assert_allclose(got, reference_logits(arrays, ids), atol=1e-5, rtol=1e-5)


def test_sequence_log_probs_pick_each_next_symbol() -> None:
    """Shared prefixes, repeats, different lengths and too-short sequences, in any order."""
    lm = NumpyLSTM.from_arrays(random_arrays((10, 6)))
    sequences = [[0, 1, 2, 0], [0, 5, 0], [0, 1, 2, 3, 4, 0], [0, 0], [0], [], [0, 1, 2, 0], [0, 1, 9, 0]]
    result = lm.sequence_log_probs(sequences)
    assert len(result) == len(sequences)
    for seq, lp in zip(sequences, result, strict=True):
        assert lp.shape == (max(len(seq) - 1, 0),)
        if len(seq) >= 2:
            expected = log_softmax(lm.logits(np.array([seq[:-1]])))[0, np.arange(len(seq) - 1), seq[1:]]
            np.testing.assert_allclose(lp, expected, atol=1e-6)


def test_large_batches_step_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    lm = NumpyLSTM.from_arrays(random_arrays((7,)))
    ids = np.random.default_rng(4).integers(0, VOCAB, (50, 5))
    whole = lm.logits(ids)
    monkeypatch.setattr("charlstm.npmodel.STEP_ROWS", 8)
    np.testing.assert_allclose(lm.logits(ids), whole, atol=1e-6)


@pytest.mark.parametrize(
    ("layers", "hidden", "dropout"), [(1, 8, 0.0), (2, 16, 0.0), (1, 33, 0.2), (3, 5, 0.0)]
)
def test_matches_keras(layers: int, hidden: int, dropout: float) -> None:
    """Every architecture option: the exported weights give Keras' logits within 1e-5."""
    from charlstm.model import Architecture, build_model, export_weights

    model = build_model(VOCAB, Architecture(hidden=hidden, layers=layers, dropout=dropout))
    rng = np.random.default_rng(hidden)
    for w in model.trainable_weights:  # not the one-hot layer's identity table
        w.assign(rng.normal(0, 0.5, w.shape).astype(np.float32))
    ids = rng.integers(0, VOCAB, (6, 10)).astype(np.int32)
    expected = np.asarray(model(ids, training=False))
    got = NumpyLSTM.from_arrays(export_weights(model)).logits(ids)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
