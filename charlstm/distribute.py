"""Choosing where training runs: one device, every local GPU, or several machines.

Everything here is ``tf.distribute``; this module only picks the strategy:

- ``none``: TensorFlow's default strategy, one device (a GPU if there is one).
- ``mirrored``: :class:`tf.distribute.MirroredStrategy` over all local GPUs (or,
  without GPUs, over the logical CPU devices); each batch is split among them.
- ``multiworker``: :class:`tf.distribute.MultiWorkerMirroredStrategy`, configured
  by the ``TF_CONFIG`` environment variable, one process per machine.
- ``auto``: ``mirrored`` when more than one GPU is visible, else ``none``.

``CHARLSTM_LOGICAL_CPUS=N`` splits the CPU into N logical devices before TensorFlow
starts (for testing ``mirrored`` without GPUs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from charlstm.errors import CharlstmError

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
LOGICAL_CPUS_ENV = "CHARLSTM_LOGICAL_CPUS"


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


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise CharlstmError(
            "--strategy multiworker needs TF_CONFIG, e.g. "
            '\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\''
        )
    try:
        config = json.loads(raw)
        workers, task = config["cluster"]["worker"], config["task"]
        if task["type"] != "worker" or not 0 <= int(task["index"]) < len(workers):
            raise ValueError(f"task {task} is not one of the {len(workers)} workers")
    except (ValueError, KeyError, TypeError) as exc:
        raise CharlstmError(f"TF_CONFIG is not a valid cluster description ({exc})") from exc


def select_strategy(name: str, log: Callable[[str], None]):
    """The ``tf.distribute.Strategy`` called ``name`` (see the module docstring).

    Call it before TensorFlow builds anything: logical devices and collective
    operations can only be set up before the runtime starts.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise CharlstmError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    split_cpu()
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "none"
    if name == "none":
        log(f"training on one device ({'GPU' if gpus else 'CPU'})")
        return tf.distribute.get_strategy()
    if name == "multiworker":
        _check_tf_config()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        # MirroredStrategy() alone takes the GPUs, or one CPU; logical CPUs are named.
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    log(f"training with strategy {name}: {strategy.num_replicas_in_sync} replica(s) share each batch")
    return strategy
