"""Choosing where training runs: one device, every local GPU, or several machines.

Everything here is ``tf.distribute``; this module only picks the strategy:

- ``none``: TensorFlow's default strategy, one device (a GPU if there is one).
- ``mirrored``: :class:`tf.distribute.MirroredStrategy` over all local GPUs (or,
  without GPUs, over the logical CPU devices); each batch is split among them.
- ``multiworker``: several machines. This would be
  :class:`tf.distribute.MultiWorkerMirroredStrategy` configured by ``TF_CONFIG``,
  but Keras 3's ``fit`` fails under it (keras-team/keras#20585: it reduces every
  scalar log along axis 0; still so in Keras 3.15, checked with two local workers),
  so it is refused with that explanation rather than crash mid-training.
- ``auto``: ``mirrored`` when more than one GPU is visible, else ``none``.

``CHARLSTM_LOGICAL_CPUS=N`` splits the CPU into N logical devices before TensorFlow
starts (for testing ``mirrored`` without GPUs).
"""

from __future__ import annotations

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
        raise CharlstmError(
            "--strategy multiworker: Keras 3 cannot yet train under tf.distribute."
            "MultiWorkerMirroredStrategy (keras-team/keras#20585); use --strategy mirrored "
            "for all the GPUs of one machine"
        )
    # MirroredStrategy() alone takes the GPUs, or one CPU; logical CPUs are named.
    devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    log(f"training with strategy {name}: {strategy.num_replicas_in_sync} replica(s) share each batch")
    return strategy
