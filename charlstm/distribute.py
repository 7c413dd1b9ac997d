"""Where training runs: one device, every local GPU, or several machines.

The strategies are ``tf.distribute``'s:

- ``none``: TensorFlow's default strategy, one device (a GPU if there is one).
- ``mirrored``: :class:`tf.distribute.MirroredStrategy` over all local GPUs (or,
  without GPUs, over the logical CPU devices); each batch is split among them.
- ``multiworker``: :class:`tf.distribute.MultiWorkerMirroredStrategy` over the
  machines that the ``TF_CONFIG`` environment variable lists, each running the same
  ``charlstm train`` command; each batch is split among all their devices. Keras 3's
  ``fit`` fails under this strategy (keras-team/keras#20585, still so in 3.15), so
  :func:`fit_across_workers` runs the training loop instead (see there why).
- ``auto``: ``mirrored`` when more than one GPU is visible, else ``none``.

What must happen before TensorFlow starts (reading ``TF_CONFIG``, splitting the CPU
into logical devices) lives in :mod:`charlstm.cluster`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from charlstm.cluster import CLUSTER_ENV, cluster_task, split_cpu
from charlstm.errors import CharlstmError
from charlstm.keras_setup import keras, tf
from charlstm.log import Log
from charlstm.options import STRATEGIES

# The largest of the values all workers pass: see largest_among_workers.
WorkerMax = Callable[[float], float]


def own_value(value: float) -> float:
    """The :data:`WorkerMax` of a single process: its own value."""
    return value


def select_strategy(name: str, log: Log) -> tf.distribute.Strategy:
    """The ``tf.distribute.Strategy`` called ``name`` (see the module docstring).

    Call it before TensorFlow builds anything: logical devices and collective
    operations can only be set up before the runtime starts.
    """
    if name not in STRATEGIES:
        raise CharlstmError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if name == "multiworker":
        rank, workers = cluster_task()  # a bad TF_CONFIG fails before anything starts
    split_cpu()
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "none"
    if name == "none":
        log(f"training on one device ({'GPU' if gpus else 'CPU'})")
        return tf.distribute.get_strategy()
    if name == "multiworker":
        # TensorFlow waits here, deaf to Ctrl-C and SIGTERM, until every worker has started.
        log(f"joining the cluster in {CLUSTER_ENV} as worker {rank} of {workers}; waiting for all to start")
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError, tf.errors.OpError) as exc:
            raise CharlstmError(
                f"--strategy multiworker: cannot join the cluster in {CLUSTER_ENV}: {exc}"
            ) from exc
        role = "the chief" if rank == 0 else "not the chief: nothing is saved here"
        log(
            f"training with strategy multiworker: worker {rank} of {workers} ({role}); "
            f"{strategy.num_replicas_in_sync} replica(s) share each batch"
        )
        return strategy
    # MirroredStrategy() alone takes the GPUs, or one CPU; logical CPUs are named.
    devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    log(f"training with strategy {name}: {strategy.num_replicas_in_sync} replica(s) share each batch")
    return strategy


def is_multiworker(strategy: Any) -> bool:
    """Whether ``strategy`` spans several processes (and so needs :func:`fit_across_workers`)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def largest_among_workers(strategy: Any) -> WorkerMax:
    """A function returning the largest of the values all workers pass to it.

    Decisions that depend on a clock or a signal (stop now, save the state now, the
    cosine learning rate) must be the same on every worker: otherwise one worker
    waits forever in a collective operation the others skip, or the replicas'
    weights drift apart. Every worker must make the same calls in the same order.
    """

    @tf.function
    def gather(value):
        # Collective reductions offer SUM and MEAN only: gather, then take the max.
        return tf.reduce_max(strategy.gather(strategy.run(lambda: tf.reshape(value, [1])), axis=0))

    return lambda value: float(gather(tf.constant(value, tf.float32)))


def fit_across_workers(
    model: Any,
    strategy: Any,
    train_data: Any,
    steps_per_epoch: int,
    val_data: Any | None,
    val_steps: int,
    epochs: int,
    initial_epoch: int,
    callbacks: list,
) -> None:
    """``model.fit`` for :class:`tf.distribute.MultiWorkerMirroredStrategy`.

    Keras 3's ``fit`` fails under this strategy (keras-team/keras#20585): in
    ``keras/src/backend/tensorflow/trainer.py``, ``_maybe_symbolic_build`` reduces an
    input batch with ``strategy.reduce`` outside a replica context ("using a
    PerReplica object while not inside a replica context"), and ``reduce_per_replica``
    then reduces every scalar step log with ``strategy.reduce("MEAN", v, axis=0)``,
    which needs an axis the scalar has not got. Working around both through private
    methods (building the model by hand, returning each log as a 1-vector) makes
    ``fit`` run, but its epoch logs are then not the NLL of all symbols (off by 1e-3
    on a small test, as the replicas' shares hold different numbers of symbols). So
    this loop replaces ``fit`` for this strategy only. It still runs
    Keras' own ``train_step`` and ``test_step`` (same loss, optimizer and gradient
    all-reduce as ``fit``) inside ``strategy.run``, adds up every metric's running
    total and count over all replicas, and drives the same callbacks in the same
    order as ``fit``.

    ``train_data`` and ``val_data`` are distributed datasets (per-replica shares of
    each global batch); ``train_data`` is endless.
    """
    steps = _WorkerSteps(model, strategy)
    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    callback_list.on_train_begin()
    train_iterator = iter(train_data)
    epoch_logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            epoch_logs = steps.logs(steps.train(train_iterator))
            callback_list.on_train_batch_end(step, epoch_logs)
            if model.stop_training:
                break
        if val_data is not None:
            model.reset_metrics()
            callback_list.on_test_begin()
            val_iterator = iter(val_data)
            for _ in range(val_steps):
                steps.test(val_iterator)
            val_logs = steps.logs(steps.read())
            callback_list.on_test_end(val_logs)
            epoch_logs = {**epoch_logs, **{f"val_{k}": v for k, v in val_logs.items()}}
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callback_list.on_train_end(epoch_logs)


class _WorkerSteps:
    """Keras' train and test steps under the strategy, with metrics summed over all replicas."""

    def __init__(self, model: Any, strategy: Any) -> None:
        self.metrics = _flat_metrics(model, strategy)
        counters = [v for m in self.metrics for v in (m.total, m.count)]
        # Plain copies outside the strategy compute each result from the summed counters.
        self.plain = [type(m).from_config(m.get_config()) for m in self.metrics]

        def summed():
            local = strategy.run(lambda: [tf.identity(v.value) for v in counters])
            return [strategy.reduce("SUM", t, axis=None) for t in local]

        @tf.function
        def train(iterator):
            strategy.run(model.train_step, args=(next(iterator),))
            return summed()

        @tf.function
        def test(iterator):
            strategy.run(model.test_step, args=(next(iterator),))

        self.train, self.test, self.read = train, test, tf.function(summed)

    def logs(self, sums: list) -> dict[str, float]:
        """Each metric's result from the counters summed over all replicas."""
        logs = {}
        for i, (metric, copy) in enumerate(zip(self.metrics, self.plain, strict=True)):
            copy.total.assign(sums[2 * i])
            copy.count.assign(sums[2 * i + 1])
            logs[metric.name] = float(copy.result())
        return logs


@contextlib.contextmanager
def lost_workers_as_errors() -> Iterator[None]:
    """Turn TensorFlow's errors for a worker that died or cannot be reached into one line.

    TensorFlow's coordination service notices a silent worker within seconds and
    aborts the collective operations of the others with these errors.
    """
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError) as exc:
        raise CharlstmError(
            f"--strategy multiworker: training stopped, a worker failed or cannot be reached "
            f"(TensorFlow's {type(exc).__name__}, details above); the chief's last checkpoint stands"
        ) from exc


def _flat_metrics(model: Any, strategy: Any) -> list:
    """The model's metrics (loss tracker, compiled metrics), built inside the strategy.

    Keras builds compiled metrics on the first batch, which must not happen inside
    ``strategy.run`` (variables are made in the cross-replica context).
    """
    with strategy.scope():
        for m in model.metrics:
            if not getattr(m, "built", True):
                ids = tf.zeros((1, 1), tf.int32)
                m.build(ids, model(ids))
    flat = []
    for m in model.metrics:
        flat.extend(getattr(m, "metrics", [m]))
    return flat
