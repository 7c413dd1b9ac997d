"""A numpy implementation of the trained LSTM's forward pass, for fast inference.

Importing TensorFlow costs seconds; reading a model to sample, score or blend needs
only a few small matrix products per symbol. The Keras model exports its weights
(``weights.npz``, read and checked by :func:`charlstm.checkpoint.load_weights`) and
this module runs the same computation: stacked LSTM layers
(Keras gate order i, f, c, o; sigmoid gates, tanh cell) over one-hot inputs, then a
dense layer to logits. A test checks it against Keras to within 1e-5.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

import numpy as np

State = list[tuple[np.ndarray, np.ndarray]]

STEP_ROWS = 16384  # rows per step at most: bounds memory, keeps arrays in cache


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities along the last axis, computed stably."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


def _fused_gates(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
    """Reorder Keras' gates i, f, c, o to i, f, o, c and scale them for one activation.

    Sigmoid-gate columns are negated and cell columns multiplied by -2, so that one
    ``1 / (1 + exp(z))`` over the whole row (in :meth:`NumpyLSTM.step`) yields
    sigmoid(x) for the gates and (tanh(x) + 1) / 2 for the cell input (numpy's float32
    exp is much faster than tanh).
    """
    h = recurrent.shape[0]
    order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
    scale = np.r_[np.full(3 * h, -1.0), np.full(h, -2.0)].astype(np.float32)
    return [
        np.ascontiguousarray(np.asarray(a, np.float32)[..., order] * scale) for a in (kernel, recurrent, bias)
    ]


class NumpyLSTM:
    """Stacked LSTM language model over one-hot symbols, in numpy.

    A tagged model (``tag_embedding`` [tags, d]) conditions every row on its tag id:
    the embedding joins layer 0's input at every step (``tag_step``) and/or sets each
    layer's initial state (``initial``: per layer, the h0 and c0 dense kernels and
    biases), as :func:`charlstm.model.build_model` does.
    """

    def __init__(
        self,
        layers: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        out_kernel: np.ndarray,
        out_bias: np.ndarray,
        tag_embedding: np.ndarray | None = None,
        tag_step: bool = False,
        initial: Sequence[tuple[np.ndarray, ...]] | None = None,
    ) -> None:
        self.layers = [tuple(_fused_gates(*layer)) for layer in layers]
        self.out_kernel = np.asarray(out_kernel, dtype=np.float32)
        self.out_bias = np.asarray(out_bias, dtype=np.float32)
        self.vocab_size = self.out_kernel.shape[1]
        self.input_size = self.vocab_size
        self.tag_embedding = None if tag_embedding is None else np.asarray(tag_embedding, np.float32)
        self.n_tags = 0 if tag_embedding is None else len(tag_embedding)
        # The first layer's input is one-hot: its product is a row of (kernel + bias),
        # plus, for a tag at every step, that tag's embedding times its part of the kernel.
        kernel, _, bias = self.layers[0]
        self._input_table = kernel[: self.vocab_size] + bias
        if tag_step:
            by_tag = self.tag_embedding @ kernel[self.vocab_size :]
            self._input_table = self._input_table[None] + by_tag[:, None]
        self._tag_step = tag_step
        self._initial = None if initial is None else [[np.asarray(a, np.float32) for a in x] for x in initial]
        self._fixed_tag: int | None = None

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> NumpyLSTM:
        """Build from ``weights.npz`` arrays (see :func:`charlstm.checkpoint.load_weights`)."""
        n = sum(1 for k in arrays if re.fullmatch(r"lstm\d+_kernel", k))
        layers = [
            (arrays[f"lstm{i}_kernel"], arrays[f"lstm{i}_recurrent"], arrays[f"lstm{i}_bias"])
            for i in range(n)
        ]
        embedding = arrays.get("tag_embedding")
        initial = None
        if "lstm0_h0_kernel" in arrays:
            parts = ("h0_kernel", "h0_bias", "c0_kernel", "c0_bias")
            initial = [tuple(arrays[f"lstm{i}_{p}"] for p in parts) for i in range(n)]
        step = embedding is not None and arrays["lstm0_kernel"].shape[0] > arrays["out_bias"].shape[-1]
        return cls(layers, arrays["out_kernel"], arrays["out_bias"], embedding, step, initial)

    @property
    def hidden_sizes(self) -> list[int]:
        return [u.shape[0] for _, u, _ in self.layers]

    def initial_state(self, batch: int, tags: np.ndarray | None = None) -> State:
        """The state before the first symbol: zeros, or computed from each row's tag."""
        if self._initial is None:
            sizes = self.hidden_sizes
            return [(np.zeros((batch, h), np.float32), np.zeros((batch, h), np.float32)) for h in sizes]
        vectors = self.tag_embedding[self._tag_ids(tags, batch)]
        return [(np.tanh(vectors @ wh + bh), vectors @ wc + bc) for wh, bh, wc, bc in self._initial]

    def under_tag(self, tag: int) -> NumpyLSTM:
        """This tagged model as an untagged one whose every row has tag id ``tag``."""
        view = copy.copy(self)
        view._fixed_tag, view.n_tags = tag, 0
        return view

    def _tag_ids(self, tags: np.ndarray | Sequence[int] | None, rows: int) -> np.ndarray:
        if tags is None and self._fixed_tag is not None:
            return np.full(rows, self._fixed_tag, np.intp)
        if tags is None or len(tags) != rows:
            raise ValueError(f"a tagged model needs one tag id per row ({rows} rows)")
        return np.asarray(tags, np.intp)

    def step(self, ids: np.ndarray, state: State, tags: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Feed one symbol per row (of a tagged model: with each row's tag id); return
        next-symbol logits and the new state.

        Large batches run :data:`STEP_ROWS` rows at a time, which bounds the memory
        of the gate pre-activations.
        """
        tags = self._tag_ids(tags, len(ids)) if self._tag_step else None
        if len(ids) <= STEP_ROWS:
            return self._step(ids, state, tags)
        parts = [
            self._step(
                ids[s : s + STEP_ROWS],
                [(h[s : s + STEP_ROWS], c[s : s + STEP_ROWS]) for h, c in state],
                None if tags is None else tags[s : s + STEP_ROWS],
            )
            for s in range(0, len(ids), STEP_ROWS)
        ]
        new_state = [
            (np.concatenate([p[1][k][0] for p in parts]), np.concatenate([p[1][k][1] for p in parts]))
            for k in range(len(state))
        ]
        return np.concatenate([p[0] for p in parts]), new_state

    def _step(self, ids: np.ndarray, state: State, tags: np.ndarray | None) -> tuple[np.ndarray, State]:
        """One step; ``tags`` only when the tag joins layer 0's input."""
        new_state: State = []
        x = ids
        with np.errstate(over="ignore"):  # exp overflows to inf: the gate is then 0
            for layer, ((w, u, b), (h, c)) in enumerate(zip(self.layers, state, strict=True)):
                if layer == 0:
                    z = np.matmul(h, u)
                    z += self._input_table[ids] if tags is None else self._input_table[tags, ids]
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

        Undoes :func:`_fused_gates` exactly: the scales are powers of two and the
        reordering swaps two blocks, so this is its own inverse permutation.
        """
        out = []
        for layer in self.layers:
            h = layer[1].shape[0]
            order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
            scale = np.r_[np.full(3 * h, -1.0), np.full(h, -2.0)]
            out.append(tuple((np.asarray(a, np.float64) / scale)[..., order] for a in layer))
        return out

    def trace(self, ids: Sequence[int], tag: int | None = None) -> list[dict[str, np.ndarray]]:
        """Run one sequence of symbol ids (of a tagged model: under ``tag``) and record
        every layer's gates and states.

        Returns one dict per layer with float64 arrays of shape [len(ids), hidden]:
        ``i`` input gate, ``f`` forget gate, ``g`` candidate (tanh), ``o`` output
        gate, ``c`` cell state and ``h`` hidden state after each step, where
        ``c_t = f_t * c_{t-1} + i_t * g_t`` and ``h_t = o_t * tanh(c_t)``.
        """
        ids = np.asarray(ids, np.intp)
        x = np.eye(self.input_size)[ids]  # [time, symbols], one-hot
        tags = None
        if self.tag_embedding is not None:
            tags = self._tag_ids(None if tag is None else [tag], 1)
        if self._tag_step:  # the tag's embedding beside every symbol
            x = np.hstack([x, np.repeat(self.tag_embedding[tags].astype(np.float64), len(ids), axis=0)])
        initial = [(h[0].astype(np.float64), c[0].astype(np.float64)) for h, c in self.initial_state(1, tags)]
        traces = []
        for (kernel, recurrent, bias), (h, c) in zip(self.keras_weights(), initial, strict=True):
            n = recurrent.shape[0]
            record = {k: np.zeros((len(ids), n)) for k in ("i", "f", "g", "o", "c", "h")}
            inputs = x @ kernel + bias
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

    def logits(self, ids: np.ndarray, tags: np.ndarray | None = None) -> np.ndarray:
        """Logits for every position of a [batch, time] id array (and [batch] tag ids)."""
        state = self.initial_state(ids.shape[0], tags)
        out = np.empty((*ids.shape, self.vocab_size), np.float32)
        for t in range(ids.shape[1]):
            out[:, t], state = self.step(ids[:, t], state, tags)
        return out

    def sequence_log_probs(
        self, sequences: Sequence[Sequence[int]], tags: Sequence[int] | None = None
    ) -> list[np.ndarray]:
        """Log-probability of each symbol after the first, for every sequence (of a
        tagged model: under each sequence's tag id in ``tags``).

        All sequences advance together, one step per position, and sequences that
        share a prefix (and tag) share its row: each distinct prefix is computed once
        (every sequence starts with the same end marker; blend candidates share far more).
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
        # The state row of each sequence's prefix: at first, one root row per tag.
        if self.n_tags:
            node = self._tag_ids(tags, len(sequences))[order]
            row_tags = np.arange(self.n_tags)
        else:
            node, row_tags = np.zeros(len(order), np.intp), None
        state = self.initial_state(max(self.n_tags, 1), row_tags)
        for t in range(int(lengths[0]) - 1):
            k = int(np.count_nonzero(lengths >= t + 2))  # sequences still predicting
            current, following = flat[starts[:k] + t], flat[starts[:k] + t + 1]
            prefixes, node[:k] = np.unique(node[:k] * self.input_size + current, return_inverse=True)
            parents = prefixes // self.input_size
            row_tags = None if row_tags is None else row_tags[parents]
            logits, state = self.step(
                prefixes % self.input_size, [(h[parents], c[parents]) for h, c in state], row_tags
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
