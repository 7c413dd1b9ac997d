"""A numpy implementation of the trained LSTM's forward pass, for fast inference.

Importing TensorFlow costs seconds; reading a model to sample, score or blend needs
only a few small matrix products per symbol. The Keras model exports its weights
(``weights.npz``) and this module runs the same computation: stacked LSTM layers
(Keras gate order i, f, c, o; sigmoid gates, tanh cell) over one-hot inputs, then a
dense layer to logits. A test checks it against Keras to within 1e-5.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

State = list[tuple[np.ndarray, np.ndarray]]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities along the last axis, computed stably."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class NumpyLSTM:
    """Stacked LSTM language model over one-hot symbols, in numpy."""

    def __init__(
        self,
        layers: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        out_kernel: np.ndarray,
        out_bias: np.ndarray,
    ) -> None:
        self.layers = []
        for kernel, recurrent, bias in layers:
            # Keras orders the gates i, f, c, o; reordering the columns to i, f, o, c
            # lets one in-place sigmoid cover the three sigmoid gates at once.
            h = recurrent.shape[0]
            order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
            self.layers.append(
                tuple(
                    np.ascontiguousarray(np.asarray(a, np.float32)[..., order])
                    for a in (kernel, recurrent, bias)
                )
            )
        self.out_kernel = np.asarray(out_kernel, dtype=np.float32)
        self.out_bias = np.asarray(out_bias, dtype=np.float32)
        self.vocab_size = self.out_kernel.shape[1]

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> NumpyLSTM:
        """Build from the ``lstm{i}_kernel/recurrent/bias``, ``out_kernel/bias`` arrays."""
        n = sum(1 for k in arrays if k.endswith("_kernel") and k.startswith("lstm"))
        layers = [
            (arrays[f"lstm{i}_kernel"], arrays[f"lstm{i}_recurrent"], arrays[f"lstm{i}_bias"])
            for i in range(n)
        ]
        return cls(layers, arrays["out_kernel"], arrays["out_bias"])

    @classmethod
    def load(cls, path: str | Path) -> NumpyLSTM:
        with np.load(path) as npz:
            return cls.from_arrays({k: npz[k] for k in npz.files})

    @property
    def hidden_sizes(self) -> list[int]:
        return [u.shape[0] for _, u, _ in self.layers]

    def initial_state(self, batch: int) -> State:
        return [
            (np.zeros((batch, h), np.float32), np.zeros((batch, h), np.float32)) for h in self.hidden_sizes
        ]

    def step(self, ids: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Feed one symbol per row; return next-symbol logits and the new state."""
        new_state: State = []
        x = None
        for layer, ((w, u, b), (h, c)) in enumerate(zip(self.layers, state, strict=False)):
            # The first layer's input is one-hot, so its product is a row lookup.
            z = w[ids] if layer == 0 else x @ w
            z += h @ u
            z += b
            n = h.shape[1]
            gates = z[:, : 3 * n]  # sigmoid(x) = (tanh(x / 2) + 1) / 2, in place
            gates *= 0.5
            np.tanh(gates, out=gates)
            gates += 1.0
            gates *= 0.5
            cell = np.tanh(z[:, 3 * n :])
            cell *= gates[:, :n]
            c = gates[:, n : 2 * n] * c
            c += cell
            h = np.tanh(c)
            h *= gates[:, 2 * n :]
            new_state.append((h, c))
            x = h
        return x @ self.out_kernel + self.out_bias, new_state

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits for every position of a [batch, time] id array."""
        state = self.initial_state(ids.shape[0])
        out = np.empty((*ids.shape, self.vocab_size), np.float32)
        for t in range(ids.shape[1]):
            out[:, t], state = self.step(ids[:, t], state)
        return out

    def sequence_log_probs(self, sequences: Sequence[Sequence[int]], chunk: int = 4096) -> list[np.ndarray]:
        """Log-probability of each symbol after the first, for every sequence.

        Sequences of equal length run together in batches of up to ``chunk`` rows, so
        nothing is padded and memory stays bounded.
        """
        result: list[np.ndarray] = [np.empty(0, np.float32)] * len(sequences)
        by_length: dict[int, list[int]] = {}
        for index, seq in enumerate(sequences):
            by_length.setdefault(len(seq), []).append(index)
        for length, group in by_length.items():
            if length < 2:
                continue
            for start in range(0, len(group), chunk):
                indices = group[start : start + chunk]
                ids = np.array([sequences[i] for i in indices], dtype=np.int64)
                lp = log_softmax(self.logits(ids[:, :-1]))
                picked = np.take_along_axis(lp, ids[:, 1:, None], axis=2)[:, :, 0]
                for row, index in enumerate(indices):
                    result[index] = picked[row]
        return result
