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
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


def _prepare(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
    """Reorder Keras' gates i, f, c, o to i, f, o, c and scale for :func:`_activate`.

    Sigmoid-gate columns are negated and cell columns multiplied by -2, so that one
    ``1 / (1 + exp(z))`` over the whole row yields sigmoid(x) for the gates and
    (tanh(x) + 1) / 2 for the cell input (numpy's float32 exp is much faster than tanh).
    """
    h = recurrent.shape[0]
    order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
    scale = np.r_[np.full(3 * h, -1.0), np.full(h, -2.0)].astype(np.float32)
    return [
        np.ascontiguousarray(np.asarray(a, np.float32)[..., order] * scale) for a in (kernel, recurrent, bias)
    ]


class NumpyLSTM:
    """Stacked LSTM language model over one-hot symbols, in numpy."""

    def __init__(
        self,
        layers: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        out_kernel: np.ndarray,
        out_bias: np.ndarray,
    ) -> None:
        self.layers = [tuple(_prepare(*layer)) for layer in layers]
        # The first layer's input is one-hot: its product is a row of (kernel + bias).
        kernel, _, bias = self.layers[0]
        self._input_table = kernel + bias
        self.out_kernel = np.asarray(out_kernel, dtype=np.float32)
        self.out_bias = np.asarray(out_bias, dtype=np.float32)
        self.vocab_size = self.out_kernel.shape[1]
        self.input_size = kernel.shape[0]

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
        """Read a ``weights.npz`` file."""
        with np.load(path) as npz:
            return cls.from_arrays({k: npz[k] for k in npz.files})

    @property
    def hidden_sizes(self) -> list[int]:
        return [u.shape[0] for _, u, _ in self.layers]

    def initial_state(self, batch: int) -> State:
        """All-zero hidden and cell states for ``batch`` rows."""
        return [
            (np.zeros((batch, h), np.float32), np.zeros((batch, h), np.float32)) for h in self.hidden_sizes
        ]

    def step(self, ids: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Feed one symbol per row; return next-symbol logits and the new state."""
        new_state: State = []
        x = ids
        with np.errstate(over="ignore"):  # exp overflows to inf: the gate is then 0
            for layer, ((w, u, b), (h, c)) in enumerate(zip(self.layers, state, strict=True)):
                if layer == 0:
                    z = np.matmul(h, u)
                    z += self._input_table[ids]
                else:
                    z = np.matmul(x, w)
                    z += h @ u
                    z += b
                n = h.shape[1]
                np.exp(z, out=z)
                z += 1.0
                np.reciprocal(z, out=z)  # sigmoid of the gates i, f, o; (tanh(g) + 1) / 2
                gate_in, gate_forget, gate_out, cell = (z[:, k * n : (k + 1) * n] for k in range(4))
                cell *= 2.0
                cell -= 1.0
                cell *= gate_in
                c = gate_forget * c
                c += cell
                x = _tanh(c)
                x *= gate_out
                new_state.append((x, c))
        logits = x @ self.out_kernel
        logits += self.out_bias
        return logits, new_state

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


def _tanh(x: np.ndarray) -> np.ndarray:
    """tanh(x) = 2 / (1 + exp(-2x)) - 1, in a new array (caller holds errstate)."""
    y = x * -2.0
    np.exp(y, out=y)
    y += 1.0
    np.divide(2.0, y, out=y)
    y -= 1.0
    return y
