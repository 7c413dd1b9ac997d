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

STEP_ROWS = 16384  # rows per step at most: bounds memory, keeps arrays in cache


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
        """Feed one symbol per row; return next-symbol logits and the new state.

        Large batches run :data:`STEP_ROWS` rows at a time, which bounds the memory
        of the gate pre-activations.
        """
        if len(ids) <= STEP_ROWS:
            return self._step(ids, state)
        parts = [
            self._step(
                ids[s : s + STEP_ROWS], [(h[s : s + STEP_ROWS], c[s : s + STEP_ROWS]) for h, c in state]
            )
            for s in range(0, len(ids), STEP_ROWS)
        ]
        new_state = [
            (np.concatenate([p[1][k][0] for p in parts]), np.concatenate([p[1][k][1] for p in parts]))
            for k in range(len(state))
        ]
        return np.concatenate([p[0] for p in parts]), new_state

    def _step(self, ids: np.ndarray, state: State) -> tuple[np.ndarray, State]:
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

    # --- Tracing (issue 15): every gate, in Keras' own order and scale -----------------
    # ``step`` above is the fast path and keeps its reordered, rescaled gates; this
    # section recomputes the textbook equations in float64 for inspection only.

    def keras_weights(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Each layer's kernel, recurrent kernel and bias as Keras stores them (i, f, c, o).

        Undoes :func:`_prepare` exactly: the scales are powers of two and the
        reordering swaps two blocks, so this is its own inverse permutation.
        """
        out = []
        for layer in self.layers:
            h = layer[1].shape[0]
            order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
            scale = np.r_[np.full(3 * h, -1.0), np.full(h, -2.0)]
            out.append(tuple((np.asarray(a, np.float64) / scale)[..., order] for a in layer))
        return out

    def trace(self, ids: Sequence[int]) -> list[dict[str, np.ndarray]]:
        """Run one sequence of symbol ids and record every layer's gates and states.

        Returns one dict per layer with float64 arrays of shape [len(ids), hidden]:
        ``i`` input gate, ``f`` forget gate, ``g`` candidate (tanh), ``o`` output
        gate, ``c`` cell state and ``h`` hidden state after each step, where
        ``c_t = f_t * c_{t-1} + i_t * g_t`` and ``h_t = o_t * tanh(c_t)``.
        """
        ids = np.asarray(ids, np.intp)
        weights = self.keras_weights()
        x = np.eye(self.input_size)[ids]  # [time, symbols], one-hot
        traces = []
        for kernel, recurrent, bias in weights:
            n = recurrent.shape[0]
            record = {k: np.zeros((len(ids), n)) for k in ("i", "f", "g", "o", "c", "h")}
            inputs = x @ kernel + bias
            h, c = np.zeros(n), np.zeros(n)
            for t in range(len(ids)):
                z = inputs[t] + h @ recurrent
                i, f, o = _sigmoid(z[:n]), _sigmoid(z[n : 2 * n]), _sigmoid(z[3 * n :])
                g = np.tanh(z[2 * n : 3 * n])
                c = f * c + i * g
                h = o * np.tanh(c)
                for key, value in zip("ifgoch", (i, f, g, o, c, h), strict=True):
                    record[key][t] = value
            traces.append(record)
            x = record["h"]
        return traces

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits for every position of a [batch, time] id array."""
        state = self.initial_state(ids.shape[0])
        out = np.empty((*ids.shape, self.vocab_size), np.float32)
        for t in range(ids.shape[1]):
            out[:, t], state = self.step(ids[:, t], state)
        return out

    def sequence_log_probs(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Log-probability of each symbol after the first, for every sequence.

        All sequences advance together, one step per position, and sequences that
        share a prefix share its row: each distinct prefix is computed once (every
        sequence starts with the same end marker; blend candidates share far more).
        """
        result = [np.empty(0, np.float32)] * len(sequences)
        lengths = np.array([len(seq) for seq in sequences], np.intp)
        order = np.flatnonzero(lengths >= 2)
        if not len(order):
            return result
        order = order[np.argsort(-lengths[order], kind="stable")]  # longest first
        lengths = lengths[order]
        flat = np.fromiter(
            (symbol for i in order for symbol in sequences[i]), np.intp, count=int(lengths.sum())
        )
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        out_starts = starts - np.arange(len(order))  # each sequence predicts len - 1 symbols
        out = np.empty(len(flat) - len(order), np.float32)
        node = np.zeros(len(order), np.intp)  # state row of each sequence's prefix
        state = self.initial_state(1)
        for t in range(int(lengths[0]) - 1):
            k = int(np.count_nonzero(lengths >= t + 2))  # sequences still predicting
            current, following = flat[starts[:k] + t], flat[starts[:k] + t + 1]
            prefixes, node[:k] = np.unique(node[:k] * self.input_size + current, return_inverse=True)
            parents = prefixes // self.input_size
            logits, state = self.step(
                prefixes % self.input_size, [(h[parents], c[parents]) for h, c in state]
            )
            out[out_starts[:k] + t] = log_softmax(logits)[node[:k], following]
        for rank, index in enumerate(order):
            result[index] = out[out_starts[rank] : out_starts[rank] + lengths[rank] - 1]
        return result


def _tanh(x: np.ndarray) -> np.ndarray:
    """tanh(x) = 2 / (1 + exp(-2x)) - 1, in a new array (caller holds errstate)."""
    y = x * -2.0
    np.exp(y, out=y)
    y += 1.0
    np.divide(2.0, y, out=y)
    y -= 1.0
    return y


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in float64, without overflow warnings."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))
