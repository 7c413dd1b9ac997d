"""Training batches: same-length names, reproducible per epoch, gathered when needed.

The batches are a pure function of (seed, epoch): epoch ``e`` shuffles the names
with ``default_rng([seed, e])``, groups them by length (so no batch needs padding)
and shuffles the batch order. Training consumes one endless stream of these batches
and the state checkpoint records how many it has used, so a resumed run sees exactly
the batches an uninterrupted run would have seen next.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from charlstm.alphabet import Alphabet
from charlstm.data import encode_names
from charlstm.keras_setup import tf
from charlstm.model import PAD_TARGET

Inputs = np.ndarray | tuple[np.ndarray, np.ndarray]  # ids, or (ids, tag ids) for a tagged model


def tag_repeats(tags: np.ndarray) -> np.ndarray:
    """How often each tag id's names appear per epoch when balanced: the square root of
    how much rarer the tag is than the commonest, rounded (1 for the commonest).

    The square root is a middle way: a tag 100 times rarer is seen 10 times as often,
    enough to learn its style, without repeating a few names so often that the model
    learns them by heart."""
    counts = np.bincount(tags)
    ratio = np.divide(counts.max(), counts, out=np.ones(len(counts)), where=counts > 0)
    return np.maximum(np.rint(np.sqrt(ratio)), 1).astype(np.int64)


class BatchPlan:
    """Same-length batches of (inputs, target ids), reproducible per epoch.

    The corpus stays one flat int8 array plus offsets; a batch is gathered from it
    only when it is needed. ``seed=None`` keeps file order and makes no shuffle
    (validation). With ``tags`` (each name's tag id) the inputs are (ids, tag ids),
    the tag id repeated at every step, as :func:`charlstm.model.build_model` takes them;
    ``balance`` repeats the names of rarer tags in every epoch (:func:`tag_repeats`).
    """

    def __init__(
        self,
        names: list[str],
        alphabet: Alphabet,
        batch_size: int,
        seed: int | None,
        replicas: int = 1,
        tags: list[int] | None = None,
        balance: bool = False,
    ) -> None:
        self.replicas = replicas
        self.tags = None if tags is None else np.asarray(tags, np.int32)
        self.flat, lengths = encode_names(names, alphabet)
        self.lengths = lengths
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.seed, self.batch_size = seed, batch_size
        # Every name once per epoch; with ``balance`` a rarer tag's names several times.
        order = np.arange(len(lengths))
        if balance and self.tags is not None:
            order = np.repeat(order, tag_repeats(self.tags)[self.tags])
        self.groups = [order[lengths[order] == n] for n in np.unique(lengths)]
        self.n_batches = sum(math.ceil(len(g) / batch_size) for g in self.groups)
        self.symbols = int(lengths[order].sum()) - len(order)  # predicted symbols per epoch

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The name indices of each batch of ``epoch``, in training order."""
        rng = None if self.seed is None else np.random.default_rng([self.seed, epoch])
        out = []
        for group in self.groups:
            group = group if rng is None else rng.permutation(group)
            out.extend(group[i : i + self.batch_size] for i in range(0, len(group), self.batch_size))
        if rng is not None:
            out = [out[i] for i in rng.permutation(len(out))]
        return out

    def arrays(self, indices: np.ndarray) -> tuple[Inputs, np.ndarray]:
        """Inputs (all symbols but the last, and the tags) and targets (all but the first)."""
        length = int(self.lengths[indices[0]])
        seqs = self.flat[self.starts[indices][:, None] + np.arange(length)].astype(np.int32)
        # tf.distribute splits a batch among replicas and Keras needs equal parts: rows
        # that predict nothing (all targets PAD_TARGET, ignored by loss and metrics) fill up.
        extra = -len(seqs) % self.replicas
        inputs = np.pad(seqs[:, :-1], ((0, extra), (0, 0)))
        targets = np.pad(seqs[:, 1:], ((0, extra), (0, 0)), constant_values=PAD_TARGET)
        if self.tags is None:
            return inputs, targets
        tags = np.pad(np.repeat(self.tags[indices][:, None], length - 1, axis=1), ((0, extra), (0, 0)))
        return (inputs, tags), targets

    def stream(self, step: int = 0) -> Iterator[tuple[Inputs, np.ndarray]]:
        """Every batch from global batch number ``step`` on, epoch after epoch."""
        epoch, skip = divmod(step, self.n_batches)
        while True:
            for indices in self.batches(epoch)[skip:]:
                yield self.arrays(indices)
            epoch, skip = epoch + 1, 0

    def dataset(self, step: int | None = 0, context: tf.distribute.InputContext | None = None):
        """A tf.data view: the endless stream from ``step``, or one pass if ``step`` is None.

        With a ``tf.distribute.InputContext`` (multi-worker input), only this worker's
        share of each batch: the rows of each of its replicas in turn, split as
        ``MirroredStrategy`` splits a batch among replicas.
        """
        spec = tf.TensorSpec((None, None), tf.int32)
        inputs_spec = spec if self.tags is None else (spec, spec)
        batches = (
            (lambda: (self.arrays(b) for b in self.batches(0))) if step is None else lambda: self.stream(step)
        )
        shares = 1
        if context is not None:
            shares = context.num_replicas_in_sync // context.num_input_pipelines
            whole, first = batches, context.input_pipeline_id * shares

            def batches():
                for inputs, targets in whole():
                    size = len(targets) // self.replicas
                    for r in range(first, first + shares):
                        rows = slice(r * size, (r + 1) * size)
                        share = inputs[rows] if self.tags is None else tuple(x[rows] for x in inputs)
                        yield share, targets[rows]

        ds = tf.data.Dataset.from_generator(batches, output_signature=(inputs_spec, spec))
        if step is None:
            ds = ds.apply(tf.data.experimental.assert_cardinality(self.n_batches * shares))
        # No autotuning: nothing here is AUTOTUNE, and its thread sleeps ever longer between
        # rounds; deleting the iterator waited out the sleep, so fit returned 5-26 s after
        # its last epoch (py-spy: ~RootDataset::Iterator waiting on that thread).
        options = tf.data.Options()
        options.autotune.enabled = False
        return ds.prefetch(4).with_options(options)
