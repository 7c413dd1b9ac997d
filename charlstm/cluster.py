"""What must be settled before TensorFlow starts: the cluster and the logical devices.

``TF_CONFIG`` (the machines of a multi-worker training and this one's place among
them) is read and checked here, without TensorFlow, so that a bad one fails at once;
``CHARLSTM_LOGICAL_CPUS=N`` splits the CPU into N logical devices, which TensorFlow
allows only before its runtime starts (for testing ``mirrored`` without GPUs).
"""

from __future__ import annotations

import json
import os

from charlstm.errors import CharlstmError

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
