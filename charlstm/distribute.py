"""Choosing where training runs: one device, every local GPU, or several machines.

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

``CHARLSTM_LOGICAL_CPUS=N`` splits the CPU into N logical devices before TensorFlow
starts (for testing ``mirrored`` without GPUs).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from charlstm.errors import CharlstmError

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
LOGICAL_CPUS_ENV = "CHARLSTM_LOGICAL_CPUS"
CLUSTER_ENV = "TF_CONFIG"
_EXAMPLE = (
    '{"cluster": {"worker": ["a.example:12345", "b.example:12345"]}, "task": {"type": "worker", "index": 0}}'
)


def split_cpu() -> None:
    """Honour ``CHARLSTM_LOGICAL_CPUS``: split the CPU into that many logical devices."""
    import tensorflow as tf

    value = os.environ.get(LOGICAL_CPUS_ENV)
    if not value:
        return
    if not value.isdigit() or int(value) < 1:
        raise CharlstmError(f"{LOGICAL_CPUS_ENV}={value!r}: expected a positive whole number")
    cpu = tf.config.list_physical_devices("CPU")[0]
    if tf.config.get_logical_device_configuration(cpu) is not None:
        return  # already split in this process
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(value))
    except RuntimeError as exc:
        raise CharlstmError(f"{LOGICAL_CPUS_ENV}: TensorFlow has already started; set it before") from exc


def cluster_task() -> tuple[int, int]:
    """This worker's rank (0 for the chief) and the number of workers, from ``TF_CONFIG``.

    Only ``chief`` and ``worker`` jobs are accepted; anything else is a
    :class:`CharlstmError` naming what is wrong.
    """
    raw = os.environ.get(CLUSTER_ENV, "").strip()
    if not raw:
        raise CharlstmError(
            f"--strategy multiworker: set {CLUSTER_ENV} on each machine to the cluster and its "
            f"own task, e.g. {CLUSTER_ENV}='{_EXAMPLE}' (see README)"
        )
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise CharlstmError(f"{CLUSTER_ENV}: not valid JSON ({exc})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise CharlstmError(
            f'{CLUSTER_ENV}: expected {{"cluster": {{...}}, "task": {{...}}}}, e.g. {_EXAMPLE}'
        )
    if set(cluster) - {"chief", "worker"}:
        raise CharlstmError(
            f"{CLUSTER_ENV}: only 'chief' and 'worker' jobs are supported, not {sorted(cluster)}"
        )
    jobs = {job: cluster.get(job, []) for job in ("chief", "worker")}
    for job, addresses in jobs.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise CharlstmError(f"{CLUSTER_ENV}: cluster.{job} must be a list of 'host:port' strings")
    if len(jobs["chief"]) > 1 or not jobs["chief"] + jobs["worker"]:
        raise CharlstmError(f"{CLUSTER_ENV}: expected at most one chief and at least one machine in all")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in jobs or not isinstance(index, int) or not 0 <= index < len(jobs[kind]):
        raise CharlstmError(
            f"{CLUSTER_ENV}: task {json.dumps(task)} is not in the cluster; expected "
            '"task": {"type": "worker", "index": N} with N from 0'
        )
    chiefs = len(jobs["chief"])
    return (index if kind == "chief" else chiefs + index), chiefs + len(jobs["worker"])


def select_strategy(name: str, log: Callable[[str], None]):
    """The ``tf.distribute.Strategy`` called ``name`` (see the module docstring).

    Call it before TensorFlow builds anything: logical devices and collective
    operations can only be set up before the runtime starts.
    """
    if name not in STRATEGIES:
        raise CharlstmError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if name == "multiworker":
        rank, workers = cluster_task()  # checked before TensorFlow's import: a bad TF_CONFIG fails fast
    import tensorflow as tf

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
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def largest_among_workers(strategy: Any) -> Callable[[float], float]:
    """A function returning the largest of the values all workers pass to it.

    Decisions that depend on a clock or a signal (stop now, save the state now, the
    cosine learning rate) must be the same on every worker: otherwise one worker
    waits forever in a collective operation the others skip, or the replicas'
    weights drift apart. Every worker must make the same calls in the same order.
    """
    import tensorflow as tf

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
    import tensorflow as tf

    from charlstm.model import keras

    metrics = _flat_metrics(model, strategy)
    counters = [v for m in metrics for v in (m.total, m.count)]
    # Plain copies outside the strategy compute each result from the summed counters.
    plain = [type(m).from_config(m.get_config()) for m in metrics]

    def summed():
        local = strategy.run(lambda: [tf.identity(v.value) for v in counters])
        return [strategy.reduce("SUM", t, axis=None) for t in local]

    @tf.function
    def train_step(iterator):
        strategy.run(model.train_step, args=(next(iterator),))
        return summed()

    @tf.function
    def test_step(iterator):
        strategy.run(model.test_step, args=(next(iterator),))

    read_sums = tf.function(summed)

    def results(sums: list) -> dict[str, float]:
        logs = {}
        for i, (m, copy) in enumerate(zip(metrics, plain, strict=True)):
            copy.total.assign(sums[2 * i])
            copy.count.assign(sums[2 * i + 1])
            logs[m.name] = float(copy.result())
        return logs

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
            epoch_logs = results(train_step(train_iterator))
            callback_list.on_train_batch_end(step, epoch_logs)
            if model.stop_training:
                break
        if val_data is not None:
            model.reset_metrics()
            callback_list.on_test_begin()
            val_iterator = iter(val_data)
            for _ in range(val_steps):
                test_step(val_iterator)
            val_logs = results(read_sums())
            callback_list.on_test_end(val_logs)
            epoch_logs = {**epoch_logs, **{f"val_{k}": v for k, v in val_logs.items()}}
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callback_list.on_train_end(epoch_logs)


@contextlib.contextmanager
def lost_workers_as_errors() -> Iterator[None]:
    """Turn TensorFlow's errors for a worker that died or cannot be reached into one line.

    TensorFlow's coordination service notices a silent worker within seconds and
    aborts the collective operations of the others with these errors.
    """
    import tensorflow as tf

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
    import tensorflow as tf

    with strategy.scope():
        for m in model.metrics:
            if not getattr(m, "built", True):
                ids = tf.zeros((1, 1), tf.int32)
                m.build(ids, model(ids))
    flat = []
    for m in model.metrics:
        flat.extend(getattr(m, "metrics", [m]))
    return flat
