"""The Keras callbacks of a training: epoch report, checkpoints, schedule, weight average, stopping.

All of them also drive the multi-worker loop (:func:`charlstm.distribute.fit_across_workers`);
there ``worker_max`` (:data:`charlstm.distribute.WorkerMax`) makes every worker take
the same clock- or signal-driven decision.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from charlstm import checkpoint as ckpt
from charlstm.batches import BatchPlan
from charlstm.distribute import WorkerMax, own_value
from charlstm.keras_setup import keras
from charlstm.log import Log
from charlstm.model import export_weights
from charlstm.npmodel import NumpyLSTM
from charlstm.portable import save_inference_model
from charlstm.sampling import Sample, TagChoice, sample_across_tags, sample_names


def learning_rate(model: keras.Model) -> float:
    """The optimizer's learning rate now."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


NOVELTY_SAMPLES = 200  # names sampled each epoch for the share of new ones (tens of ms in numpy)


class EpochReport(keras.callbacks.Callback):
    """Logs one line per epoch (NLL in nats and bits, speed, the share of new names) and a
    few sampled names.

    It also adds ``symbols_per_sec``, ``learning_rate`` and ``new_share`` (of
    :data:`NOVELTY_SAMPLES` names sampled from the weights now, those not in the training
    names) to the epoch logs, which the history then records.
    """

    def __init__(
        self, meta: ckpt.ModelMeta, plan: BatchPlan, known: set[str], samples: int, seed: int, log: Log
    ) -> None:
        super().__init__()
        self.meta, self.plan, self.known, self.samples, self.log = meta, plan, known, samples, log
        self.rng = np.random.default_rng(seed)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.monotonic()
        self.seen_batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seen_batches += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        elapsed = max(time.monotonic() - self.started, 1e-9)
        logs["symbols_per_sec"] = self.plan.symbols * self.seen_batches / self.plan.n_batches / elapsed
        logs["learning_rate"] = learning_rate(self.model)
        line = f"epoch {epoch + 1}: train {logs['nll']:.4f} nats ({logs['bpc']:.3f} bits)"
        if "val_nll" in logs:
            line += f"  val {logs['val_nll']:.4f} nats ({logs['val_bpc']:.3f} bits)"
        line += f"  lr {logs['learning_rate']:.2g}  {logs['symbols_per_sec']:,.0f} symbols/s"
        if self.seen_batches < self.plan.n_batches:
            line += f"  ({self.seen_batches}/{self.plan.n_batches} batches)"
        drawn = self.sample(max(self.samples, NOVELTY_SAMPLES)) if self.samples else []
        if drawn:
            logs["new_share"] = sum(s.name not in self.known for s in drawn) / len(drawn)
            line += f"  new {logs['new_share']:.0%}"
        self.log(line)
        if drawn:
            marked = (
                f"{s.name}{f' [{s.tag}]' if s.tag else ''} ({'seen' if s.name in self.known else 'new'})"
                for s in drawn[: self.samples]
            )
            self.log("  samples: " + ", ".join(marked))

    def sample(self, n: int) -> list[Sample]:
        """``n`` names sampled from the weights now (shuffled, repeats kept).

        A tagged model samples each tag its training names have: a fine-tuning's new
        tags, not the base's, so the share of new names is a copying guard for that file.
        """
        lm = NumpyLSTM.from_arrays(export_weights(self.model))
        seed = int(self.rng.integers(2**31))
        alphabet, tags = self.meta.alphabet, self.meta.tags
        if tags:
            trained = [t for t in tags if self.meta.tag_counts.get(t, 0) > 0] or tags
            choices = [TagChoice(t, tags.index(t), 1.0) for t in trained]
            return sample_across_tags(lm, alphabet, n, choices, seed=seed, unique=False)
        return sample_names(lm, alphabet, n, seed=seed, unique=False)


_COUNTERS = ("wait", "best", "cooldown_counter")  # what early stopping and plateau need on resume


def _counters(cb: keras.callbacks.Callback) -> dict:
    values = {k: getattr(cb, k, None) for k in _COUNTERS}
    return {k: float(v) for k, v in values.items() if v is not None}


class Checkpointer(keras.callbacks.Callback):
    """Saves the best model every epoch and the training state at least every interval.

    Keras' ModelCheckpoint, BackupAndRestore and CSVLogger write in place, so a kill
    mid-write leaves a truncated file, and none records the early-stopping and
    plateau counters an exact resume needs. Here every file goes through
    :mod:`charlstm.checkpoint`, which writes atomically.
    """

    def __init__(
        self,
        model_dir: Path,
        meta: ckpt.ModelMeta,
        monitor: str,
        state: ckpt.TrainingState,
        stateful: list,
        interval: float,
        worker_max: WorkerMax = own_value,
        averager: WeightAverage | None = None,
    ) -> None:
        super().__init__()
        self.dir, self.meta, self.monitor, self.state = model_dir, meta, monitor, state
        self.stateful, self.interval, self.worker_max = stateful, interval, worker_max
        self.averager = averager
        self.save_seconds = 0.0  # how long the last epoch-end save took

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.last_save = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.state.step += 1
        if self.worker_max(time.monotonic() - self.last_save >= self.interval):
            self.save_state()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        started = time.monotonic()
        logs = dict(logs or {})
        current = float(logs.get(self.monitor, math.inf))
        averager = self.averager
        if averager is None or averager.val_nll is None or averager.val_nll >= current:
            averager = None  # this epoch's own weights are the candidate
        else:
            current = averager.val_nll
        state = self.state
        record = {"epoch": epoch + 1, "step": state.step, **{k: float(v) for k, v in logs.items()}}
        state.history.append(record)
        state.epoch = epoch + 1
        training = self.meta.training
        if current < state.best_or_inf:
            state.best, state.best_epoch = current, epoch + 1
            with averager.swapped_in() if averager else contextlib.nullcontext():
                save_inference_model(self.dir / ckpt.KERAS_FILE, self.model, self.meta)  # Keras layers only
                ckpt.write_arrays(self.dir / ckpt.WEIGHTS_FILE, export_weights(self.model))
            training.averaged_epochs = list(state.average_epochs) if averager else None
            training.soup = None  # a resumed fine-tuning's epoch beat its soup (training._soup)
        training.epochs, training.best_epoch = epoch + 1, state.best_epoch
        training.best_val_nll = state.best if self.monitor == "val_nll" else None
        training.best_train_nll = state.best if self.monitor == "nll" else None
        ckpt.write_meta(self.dir, self.meta)
        ckpt.write_history(self.dir, state.history)
        self.save_state()
        self.save_seconds = time.monotonic() - started

    def save_state(self) -> None:
        """Write the latest training state (model, optimizer, counters) atomically."""
        self.state.callbacks = {type(cb).__name__: _counters(cb) for cb in self.stateful}
        self.state.learning_rate = learning_rate(self.model)
        ckpt.write_state(self.dir, self.state, self.model)
        self.last_save = time.monotonic()


class RestoreCallbackState(keras.callbacks.Callback):
    """Puts early-stopping and plateau counters back after they reset at train begin."""

    def __init__(self, saved: dict, stateful: list) -> None:
        super().__init__()
        self.saved, self.stateful = saved, stateful

    def on_train_begin(self, logs: dict | None = None) -> None:
        for cb in self.stateful:
            for key, value in self.saved.get(type(cb).__name__, {}).items():
                setattr(cb, key, value if key == "best" else int(value))


# The cosine schedule ends at this share of its starting learning rate: near zero, so
# that the last epoch is the best one, unless weights are averaged (WeightAverage), when
# the average does the annealing and a higher floor keeps the epochs it averages apart.
COSINE_FLOOR = 0.01
AVERAGING_FLOOR = 0.25


def cosine_scale(progress: float, floor: float = COSINE_FLOOR) -> float:
    """The cosine schedule's learning rate at ``progress`` (0 to 1), as a share of its start."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class CosineToDeadline(keras.callbacks.Callback):
    """Anneals the learning rate along a half cosine to ``floor`` times its start by the end of training.

    The end is whichever comes first: the deadline, or the last batch of the last
    epoch (``steps`` more batches). With a fixed budget, decaying to (almost) zero at
    its end gives a better model than a plateau schedule, which has no time to react;
    a small file that reaches ``--epochs`` long before the time limit still anneals.
    ``worker_max`` gives all workers of a multi-worker run the same learning rate (the
    furthest progress).
    """

    def __init__(
        self, deadline: float, steps: int, worker_max: WorkerMax = own_value, floor: float = COSINE_FLOOR
    ) -> None:
        super().__init__()
        self.deadline, self.steps, self.worker_max, self.floor = deadline, max(steps, 1), worker_max, floor
        self.done = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.begin = time.monotonic()
        self.base = learning_rate(self.model)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        timed = (time.monotonic() - self.begin) / max(self.deadline - self.begin, 1e-9)
        progress = self.worker_max(min(max(timed, self.done / self.steps), 1.0))
        self.model.optimizer.learning_rate.assign(self.base * cosine_scale(progress, self.floor))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.done += 1


class WeightAverage(keras.callbacks.Callback):
    """Averages the weights of every epoch that ends once the learning rate is down to
    ``start_lr``, and validates the average after each such epoch.

    This is stochastic weight averaging (Izmailov et al., 2018): the weights along the
    annealing schedule circle a wide minimum, and their mean lies nearer its middle, so
    it often predicts held-out names better than any one of them (README, Training). The
    :class:`Checkpointer` keeps the average when it validates better than every epoch.
    Keras' optimizers can average too (``use_ema``), but per step from the very first
    step, and swap the average in only when fitting ends; this needs a start late in
    the schedule and a validation after every epoch.
    """

    def __init__(
        self, model_dir: Path, state: ckpt.TrainingState, start_lr: float, val_data, val_steps: int, log: Log
    ) -> None:
        super().__init__()
        self.dir, self.state, self.start_lr, self.log = model_dir, state, start_lr, log
        self.val_data, self.val_steps = val_data, val_steps
        self.average = ckpt.read_average(model_dir, state)  # resumed, or None
        self.val_nll: float | None = None  # this epoch's average's validation NLL, if averaging

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.val_nll = None
        if self.average is None and learning_rate(self.model) > self.start_lr:
            return
        weights = self.model.get_weights()
        if self.average is None:
            self.average, first = weights, epoch + 1
        else:
            first = self.state.average_epochs[0]
            n = epoch + 1 - first  # epochs in the average so far
            self.average = [a + (w - a) / (n + 1) for a, w in zip(self.average, weights, strict=True)]
        ckpt.write_average(self.dir, self.state, self.average, [first, epoch + 1])
        with self.swapped_in():
            result = self.model.evaluate(self.val_data, steps=self.val_steps, verbose=0, return_dict=True)
        self.val_nll = float(result["nll"])
        if logs is not None:  # the history records it
            logs["val_nll_averaged"] = self.val_nll
        self.log(f"  weights averaged over epochs {first}-{epoch + 1}: val {self.val_nll:.4f} nats "
                 f"({self.val_nll / math.log(2):.3f} bits)")  # fmt: skip

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model holds the average inside the block, its own weights again after it."""
        own = self.model.get_weights()
        self.model.set_weights(self.average)
        try:
            yield
        finally:
            self.model.set_weights(own)


_TIME_LIMIT, _INTERRUPTED = 1.0, 2.0  # why to stop, in the order workers settle on (the largest)


class StopControl(keras.callbacks.Callback):
    """Stops after the current batch on SIGINT/SIGTERM or near the time limit.

    The deadline keeps a margin for what follows the last batch: a validation pass
    and the final save, estimated from the last ones measured (or, before any, from
    the training speed so far).

    In a multi-worker run (``worker_max`` given) every worker stops after the same
    batch: when any of them is signalled or reaches its time limit.
    """

    def __init__(
        self,
        deadline: float | None,
        val_symbols: int,
        batch_symbols: float,
        checkpointer: Checkpointer,
        worker_max: WorkerMax | None = None,
        val_passes: int = 1,
    ) -> None:
        super().__init__()
        self.deadline, self.val_symbols, self.batch_symbols = deadline, val_symbols, batch_symbols
        self.val_passes = val_passes  # validations after the last batch (2 with a weight average)
        self.checkpointer, self.worker_max = checkpointer, worker_max
        self.signal: int | None = None
        self.reason: str | None = None
        self.val_seconds: float | None = None
        self.busy = self.first_batch = 0.0
        self.batches = 0

    def handle(self, signum: int, frame: object) -> None:
        if self.signal is not None:  # a second signal: stop now, the last save stands
            raise KeyboardInterrupt
        self.signal, self.reason = signum, "interrupted"
        if self.model is not None and self.worker_max is None:  # workers stop only together
            self.model.stop_training = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.signal is not None and self.worker_max is None:
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
        if self.worker_max is not None:
            reason = self.worker_max(reason)
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
        if val is None:  # forward only: about a third of training per symbol and of building its
            # graph (measured: a fifth, 0.5 s against the first batch's 2.2-3.2 s)
            timed = max(self.batches - 1, 1) * self.batch_symbols
            val = (self.val_symbols * self.busy / timed + self.first_batch) / 3
        save = self.checkpointer.save_seconds or 2.0
        return 1.5 * (val * self.val_passes + save) + 1.0
