"""Training: input pipeline, Keras callbacks, checkpoints, signals and resume.

The batches are a pure function of (seed, epoch): epoch ``e`` shuffles the names
with ``default_rng([seed, e])``, groups them by length (so no batch needs padding)
and shuffles the batch order. Training consumes one endless stream of these batches
and the state checkpoint records how many it has used, so a resumed run sees exactly
the batches an uninterrupted run would have seen next.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shlex
import signal
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from charlstm import checkpoint as ckpt
from charlstm.alphabet import Alphabet
from charlstm.data import encode_names
from charlstm.distribute import (
    fit_across_workers,
    is_multiworker,
    largest_among_workers,
    lost_workers_as_errors,
    select_strategy,
)
from charlstm.errors import CharlstmError
from charlstm.model import PAD_TARGET, build_model, compile_model, export_weights, keras
from charlstm.npmodel import NumpyLSTM
from charlstm.portable import save_inference_model
from charlstm.prepare import STATE_FILE, Log, PreparedRun, TrainOptions, log_to_stderr, prepare_training
from charlstm.sampling import sample_names

if TYPE_CHECKING:
    import tensorflow as tf

Agree = Callable[[float], float]  # the value all workers agree on (the largest); see charlstm.distribute


def _alone(value: float) -> float:
    """The agreement of a single process with itself."""
    return value


class BatchPlan:
    """Same-length batches of (input ids, target ids), reproducible per epoch.

    The corpus stays one flat int8 array plus offsets; a batch is gathered from it
    only when it is needed. ``seed=None`` keeps file order and makes no shuffle
    (validation).
    """

    def __init__(
        self, names: list[str], alphabet: Alphabet, batch_size: int, seed: int | None, replicas: int = 1
    ) -> None:
        self.replicas = replicas
        self.flat, lengths = encode_names(names, alphabet)
        self.lengths = lengths
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.seed, self.batch_size = seed, batch_size
        self.groups = [np.flatnonzero(lengths == n) for n in np.unique(lengths)]
        self.n_batches = sum(math.ceil(len(g) / batch_size) for g in self.groups)
        self.symbols = int(lengths.sum()) - len(lengths)  # predicted symbols per epoch

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

    def arrays(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (all symbols but the last) and targets (all but the first)."""
        length = int(self.lengths[indices[0]])
        seqs = self.flat[self.starts[indices][:, None] + np.arange(length)].astype(np.int32)
        # tf.distribute splits a batch among replicas and Keras needs equal parts: rows
        # that predict nothing (all targets PAD_TARGET, ignored by loss and metrics) fill up.
        extra = -len(seqs) % self.replicas
        inputs = np.pad(seqs[:, :-1], ((0, extra), (0, 0)))
        return inputs, np.pad(seqs[:, 1:], ((0, extra), (0, 0)), constant_values=PAD_TARGET)

    def stream(self, step: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
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
        import tensorflow as tf

        spec = tf.TensorSpec((None, None), tf.int32)
        batches = (
            (lambda: (self.arrays(b) for b in self.batches(0))) if step is None else lambda: self.stream(step)
        )
        shares = 1
        if context is not None:
            shares = context.num_replicas_in_sync // context.num_input_pipelines
            whole, first = batches, context.input_pipeline_id * shares

            def batches():
                for inputs, targets in whole():
                    size = len(inputs) // self.replicas
                    for r in range(first, first + shares):
                        yield inputs[r * size : (r + 1) * size], targets[r * size : (r + 1) * size]

        ds = tf.data.Dataset.from_generator(batches, output_signature=(spec, spec))
        if step is None:
            ds = ds.apply(tf.data.experimental.assert_cardinality(self.n_batches * shares))
        return ds.prefetch(4)


def _learning_rate(model: keras.Model) -> float:
    """The optimizer's learning rate now."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class EpochReport(keras.callbacks.Callback):
    """Logs one line per epoch (NLL in nats and bits, speed) and a few sampled names.

    It also adds ``symbols_per_sec`` and ``learning_rate`` to the epoch logs, which
    the history then records.
    """

    def __init__(
        self, alphabet: Alphabet, plan: BatchPlan, known: set[str], opts: TrainOptions, log: Log
    ) -> None:
        super().__init__()
        self.alphabet, self.plan, self.known, self.opts, self.log = alphabet, plan, known, opts, log
        self.rng = np.random.default_rng(opts.seed)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.monotonic()
        self.seen_batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seen_batches += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        elapsed = max(time.monotonic() - self.started, 1e-9)
        logs["symbols_per_sec"] = self.plan.symbols * self.seen_batches / self.plan.n_batches / elapsed
        logs["learning_rate"] = _learning_rate(self.model)
        line = f"epoch {epoch + 1}: train {logs['nll']:.4f} nats ({logs['bpc']:.3f} bits)"
        if "val_nll" in logs:
            line += f"  val {logs['val_nll']:.4f} nats ({logs['val_bpc']:.3f} bits)"
        line += f"  lr {logs['learning_rate']:.2g}  {logs['symbols_per_sec']:,.0f} symbols/s"
        if self.seen_batches < self.plan.n_batches:
            line += f"  ({self.seen_batches}/{self.plan.n_batches} batches)"
        self.log(line)
        if self.opts.samples_per_epoch:
            lm = NumpyLSTM.from_arrays(export_weights(self.model))
            seed = int(self.rng.integers(2**31))
            samples = sample_names(lm, self.alphabet, self.opts.samples_per_epoch, seed=seed, unique=False)
            shown = [f"{s.name} ({'seen' if s.name in self.known else 'new'})" for s in samples]
            self.log("  samples: " + ", ".join(shown))


_STATE_KEYS = ("wait", "best", "cooldown_counter")


def _callback_state(cb: keras.callbacks.Callback) -> dict:
    values = {k: getattr(cb, k, None) for k in _STATE_KEYS}
    return {k: float(v) for k, v in values.items() if v is not None}


class Checkpointer(keras.callbacks.Callback):
    """Saves the best model every epoch and the training state at least every interval.

    Keras' ModelCheckpoint, BackupAndRestore and CSVLogger write in place, so a kill
    mid-write leaves a truncated file, and none records the early-stopping and
    plateau counters an exact resume needs. Here every file goes through
    :func:`charlstm.checkpoint.atomic_write`. The state is a Keras file named by its
    step plus ``state.json`` naming it, written in that order, so the pair is always
    consistent; older state files are removed afterwards. ``agree`` makes all
    workers of a multi-worker run save at the same steps.
    """

    def __init__(
        self,
        model_dir: Path,
        meta: dict,
        monitor: str,
        state: dict,
        stateful: list,
        interval: float,
        agree: Agree = _alone,
    ) -> None:
        super().__init__()
        self.dir, self.meta, self.monitor, self.state = model_dir, meta, monitor, state
        self.stateful, self.interval, self.agree = stateful, interval, agree
        self.save_seconds = 0.0  # how long the last epoch-end save took

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.last_save = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.state["step"] += 1
        if self.agree(time.monotonic() - self.last_save >= self.interval):
            self.save_state()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        started = time.monotonic()
        logs = dict(logs or {})
        current = float(logs.get(self.monitor, math.inf))
        record = {"epoch": epoch + 1, "step": self.state["step"], **{k: float(v) for k, v in logs.items()}}
        self.state["history"].append(record)
        self.state["epoch"] = epoch + 1
        if current < self.state.get("best", math.inf):
            self.state.update(best=current, best_epoch=epoch + 1)
            save_inference_model(self.dir / ckpt.KERAS_FILE, self.model)  # portable: Keras layers only
            ckpt.write_arrays(self.dir / ckpt.WEIGHTS_FILE, export_weights(self.model))
        self.meta["training"].update(
            epochs=epoch + 1,
            best_epoch=self.state.get("best_epoch"),
            best_val_nll=self.state.get("best") if self.monitor == "val_nll" else None,
            best_train_nll=self.state.get("best") if self.monitor == "nll" else None,
        )
        ckpt.write_json(self.dir / ckpt.META_FILE, self.meta)
        ckpt.write_text(self.dir / ckpt.HISTORY_FILE, _history_csv(self.state["history"]))
        self.save_state()
        self.save_seconds = time.monotonic() - started

    def save_state(self) -> None:
        """Write the latest training state (model, optimizer, counters) atomically."""
        state_dir = self.dir / ckpt.STATE_DIR
        state_dir.mkdir(exist_ok=True)
        self.state["callbacks"] = {type(cb).__name__: _callback_state(cb) for cb in self.stateful}
        self.state["learning_rate"] = _learning_rate(self.model)
        name = f"step-{self.state['step']}.keras"
        ckpt.save_keras(state_dir / name, self.model)
        self.state["model"] = name
        ckpt.write_json(state_dir / STATE_FILE, self.state)
        for old in state_dir.glob("step-*.keras"):
            if old.name != name:
                old.unlink(missing_ok=True)
        self.last_save = time.monotonic()


def _history_csv(history: list[dict]) -> str:
    keys = list(dict.fromkeys(k for row in history for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


class RestoreCallbackState(keras.callbacks.Callback):
    """Puts early-stopping and plateau counters back after they reset at train begin."""

    def __init__(self, saved: dict, stateful: list) -> None:
        super().__init__()
        self.saved, self.stateful = saved, stateful

    def on_train_begin(self, logs: dict | None = None) -> None:
        for cb in self.stateful:
            for key, value in self.saved.get(type(cb).__name__, {}).items():
                setattr(cb, key, value if key == "best" else int(value))


class CosineToDeadline(keras.callbacks.Callback):
    """Anneals the learning rate along a half cosine to 1% of its start by the deadline.

    With a fixed time budget, decaying to (almost) zero at the end gives a better
    model than a plateau schedule, which has no time to react. ``agree`` gives all
    workers of a multi-worker run the same learning rate (the furthest progress).
    """

    def __init__(self, deadline: float, floor: float = 0.01, agree: Agree = _alone) -> None:
        super().__init__()
        self.deadline, self.floor, self.agree = deadline, floor, agree

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.begin = time.monotonic()
        self.base = _learning_rate(self.model)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        progress = self.agree(
            min((time.monotonic() - self.begin) / max(self.deadline - self.begin, 1e-9), 1.0)
        )
        scale = self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))
        self.model.optimizer.learning_rate.assign(self.base * scale)


_TIME_LIMIT, _INTERRUPTED = 1.0, 2.0  # why to stop, in the order workers agree on (the largest)


class StopControl(keras.callbacks.Callback):
    """Stops after the current batch on SIGINT/SIGTERM or near the time limit.

    The deadline keeps a margin for what follows the last batch: a validation pass
    and the final save, estimated from the last ones measured (or, before any, from
    the training speed so far).

    In a multi-worker run (``agree`` given) every worker stops after the same batch:
    when any of them is signalled or reaches its time limit.
    """

    def __init__(
        self,
        deadline: float | None,
        val_symbols: int,
        batch_symbols: float,
        checkpointer: Checkpointer,
        agree: Agree | None = None,
    ) -> None:
        super().__init__()
        self.deadline, self.val_symbols, self.batch_symbols = deadline, val_symbols, batch_symbols
        self.checkpointer, self.agree = checkpointer, agree
        self.signal: int | None = None
        self.reason: str | None = None
        self.val_seconds: float | None = None
        self.busy = self.first_batch = 0.0
        self.batches = 0

    def handle(self, signum: int, frame: object) -> None:
        if self.signal is not None:  # a second signal: stop now, the last save stands
            raise KeyboardInterrupt
        self.signal, self.reason = signum, "interrupted"
        if self.model is not None and self.agree is None:  # workers stop only together
            self.model.stop_training = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.signal is not None and self.agree is None:
            self.model.stop_training = True

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.batch_started = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        if self.batches:
            self.busy += now - self.batch_started
        else:  # the first batch also builds the graph: not a fair sample of speed
            self.first_batch = now - self.batch_started
        self.batches += 1
        reason = _INTERRUPTED if self.signal is not None else 0.0
        if not reason and self.deadline is not None and now + self.margin() >= self.deadline:
            reason = _TIME_LIMIT
        if self.agree is not None:
            reason = self.agree(reason)
        if reason:
            self.reason = self.reason or ("interrupted" if reason == _INTERRUPTED else "time limit")
            self.model.stop_training = True

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.test_started = time.monotonic()

    def on_test_end(self, logs: dict | None = None) -> None:
        self.val_seconds = time.monotonic() - self.test_started

    def margin(self) -> float:
        """Seconds to keep for the final validation and save."""
        val = self.val_seconds
        if val is None:  # about a third of training per symbol, plus building its graph
            timed = max(self.batches - 1, 1) * self.batch_symbols
            val = self.val_symbols * self.busy / timed / 3 + self.first_batch
        save = self.checkpointer.save_seconds or 2.0
        return 1.5 * (val + save) + 1.0


def train(
    names_file: str | Path,
    model_dir: str | Path,
    opts: TrainOptions,
    *,
    resume: bool = False,
    overwrite: bool = False,
    given: frozenset[str] = frozenset(),
    started: float | None = None,
    log: Log = log_to_stderr,
) -> dict:
    """Train on ``names_file`` into ``model_dir``; return the final training record.

    :func:`charlstm.prepare.prepare_training` (checks, locks, reads the names), then
    :func:`train_prepared`; see both.
    """
    started = time.monotonic() if started is None else started
    prepared = prepare_training(
        names_file, model_dir, opts, resume=resume, overwrite=overwrite, given=given, log=log
    )
    with prepared as run:
        return train_prepared(run, started)


def train_prepared(run: PreparedRun, started: float | None = None) -> dict:
    """Train ``run`` (see :func:`charlstm.prepare.prepare_training`); return the final training record.

    ``started`` is the ``time.monotonic()`` the time limit counts from (default: now).
    The record's ``stopped`` says why training ended; ``signal`` is set when SIGINT or
    SIGTERM interrupted it (the state is saved; ``--resume`` continues).
    """
    started = time.monotonic() if started is None else started
    strategy = select_strategy(run.opts.strategy, run.log)  # first: logical devices must precede TF's start
    if not is_multiworker(strategy):
        return _train(run, strategy, started)
    with lost_workers_as_errors():
        return _train(run, strategy, started)


def _train(run: PreparedRun, strategy, started: float) -> dict:
    """:func:`train_prepared` under ``strategy``."""
    opts, model_dir, log, meta, state = run.opts, run.model_dir, run.log, run.meta, run.state
    alphabet, train_names, val_names, chief = run.alphabet, run.train_names, run.val_names, run.chief
    deadline = None if opts.time_limit is None else started + opts.time_limit
    multiworker = is_multiworker(strategy)
    agree = largest_among_workers(strategy) if multiworker else _alone
    # Cosine anneals to the deadline, so it needs one; "auto" picks it when there is one.
    cosine = deadline is not None and opts.lr_schedule in ("auto", "cosine")
    schedule = "cosine" if cosine else "plateau"
    if multiworker:
        _check_same_run(agree, opts, schedule, alphabet, train_names, val_names)
    if run.overwrite and not run.resume and (model_dir / ckpt.STATE_DIR).is_dir():
        for old in (model_dir / ckpt.STATE_DIR).iterdir():
            old.unlink()
    known = set(train_names)
    ckpt.write_text(model_dir / ckpt.NAMES_FILE, "".join(f"{n}\n" for n in sorted(known)))

    keras.utils.set_random_seed(opts.seed + state["step"])
    with strategy.scope():  # variables live on every replica; Keras splits each batch among them
        if run.resume:
            model = keras.models.load_model(model_dir / ckpt.STATE_DIR / state["model"])
            model.optimizer.learning_rate.assign(state["learning_rate"])
        else:
            model = build_model(len(alphabet), opts.architecture)
            compile_model(model, opts.learning_rate, opts.clipnorm)
    parameters = sum(int(np.prod(w.shape)) for w in model.trainable_weights)  # not the one-hot table
    meta["parameters"] = parameters

    replicas = strategy.num_replicas_in_sync
    plan = BatchPlan(train_names, alphabet, opts.batch_size, opts.seed, replicas)
    val_plan = BatchPlan(val_names, alphabet, 512, None, replicas) if val_names else None
    monitor = "val_nll" if val_plan is not None else "nll"
    # The cosine schedule's last epochs, at a small learning rate, are usually its best:
    # it runs to the deadline (still keeping the best epoch) instead of stopping early.
    patience = opts.patience if schedule != "cosine" else opts.epochs
    early = keras.callbacks.EarlyStopping(monitor=monitor, mode="min", patience=patience)
    stateful = [early]
    callbacks: list = [EpochReport(alphabet, plan, known, opts, log), keras.callbacks.TerminateOnNaN()]
    if schedule == "cosine":
        callbacks.append(CosineToDeadline(deadline, agree=agree))
    else:
        plateau = keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode="min", factor=0.5, patience=max(1, opts.patience // 2 - 1), min_lr=1e-5
        )
        stateful.append(plateau)
        callbacks.append(plateau)
    if opts.tensorboard and chief:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=opts.tensorboard, write_graph=False))
    checkpointer = Checkpointer(model_dir, meta, monitor, state, stateful, opts.state_interval, agree)
    val_symbols = val_plan.symbols if val_plan else 0
    control = StopControl(
        deadline, val_symbols, plan.symbols / plan.n_batches, checkpointer, agree if multiworker else None
    )
    callbacks += [early, RestoreCallbackState(state.get("callbacks", {}), stateful), checkpointer, control]
    where = model_dir if chief else "the chief's model directory"
    log(
        f"training {parameters:,}-parameter model on {len(train_names):,} names "
        f"({len(val_names):,} for validation) into {where}"
    )
    if state["epoch"] >= opts.epochs:
        log(f"already trained {state['epoch']} epochs; raise --epochs to train more")
        return meta["training"]
    previous = {s: signal.signal(s, control.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Keras writes its progress bar to stdout; stdout is kept for results.
        with contextlib.redirect_stdout(sys.stderr):
            if multiworker:  # each worker reads its replicas' shares of every batch
                distribute = strategy.distribute_datasets_from_function
                fit_across_workers(
                    model,
                    strategy,
                    distribute(lambda context: plan.dataset(state["step"], context)),
                    plan.n_batches,
                    distribute(lambda context: val_plan.dataset(None, context)) if val_plan else None,
                    val_plan.n_batches if val_plan else 0,
                    opts.epochs,
                    state["epoch"],
                    callbacks,
                )
            else:
                model.fit(
                    plan.dataset(state["step"]),
                    steps_per_epoch=plan.n_batches,
                    validation_data=val_plan.dataset(None) if val_plan else None,
                    epochs=opts.epochs,
                    initial_epoch=state["epoch"],
                    callbacks=callbacks,
                    shuffle=False,  # the batch plan shuffles, seeded
                    verbose=1 if sys.stderr.isatty() else 0,
                )
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    stopped = control.reason or ("early stopping" if early.stopped_epoch else "epochs")
    meta["training"].update(stopped=stopped)
    ckpt.write_json(model_dir / ckpt.META_FILE, meta)
    log(
        f"stopped ({stopped}); best epoch {meta['training'].get('best_epoch')}: {monitor} "
        f"{state.get('best', math.nan):.4f} nats; model saved in {where}"
    )
    if control.signal is not None and chief:
        log(
            f"training state saved; to continue{' on one machine' if multiworker else ''}: charlstm train "
            f"{shlex.quote(run.names_file)} --model {shlex.quote(str(model_dir))} --resume"
        )
    return {**meta["training"], "signal": control.signal}


def _check_same_run(
    agree: Agree, opts: TrainOptions, schedule: str, alphabet: Alphabet, train: list[str], val: list[str]
) -> None:
    """Refuse to start unless every worker has the same names and batch-shaping options.

    Workers that disagree would split different batches, or wait for each other in
    different collective operations, forever.
    """
    shaping = [opts.epochs, opts.batch_size, opts.learning_rate, opts.seed, opts.patience, opts.clipnorm,
               opts.architecture.to_json(), alphabet.to_json(), schedule, train, val]  # fmt: skip
    mine = float(zlib.crc32(json.dumps(shaping).encode()) & 0xFFFFFF)  # exact in float32
    if agree(mine) != -agree(-mine):
        raise CharlstmError(
            "--strategy multiworker: the workers were given different names or options; run the "
            "same command on the same names file on every machine (only TF_CONFIG differs)"
        )
