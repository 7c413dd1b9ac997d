"""Training a checked run (:class:`charlstm.preflight.TrainingRun`) with Keras, in phases.

:func:`train_run` builds the model or resumes it, assembles the callbacks
(:mod:`charlstm.callbacks`), fits, and finishes by recording why it stopped. Batches
come from :class:`charlstm.batches.BatchPlan`; the strategy (one device, mirrored,
several machines) from :mod:`charlstm.distribute`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import shlex
import shutil
import signal
import sys
import time
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from charlstm import checkpoint as ckpt
from charlstm.batches import BatchPlan
from charlstm.callbacks import (
    AVERAGING_FLOOR,
    COSINE_FLOOR,
    Checkpointer,
    CosineToDeadline,
    EpochReport,
    RestoreCallbackState,
    StopControl,
    WeightAverage,
    cosine_scale,
)
from charlstm.distribute import (
    WorkerMax,
    fit_across_workers,
    is_multiworker,
    largest_among_workers,
    lost_workers_as_errors,
    own_value,
    select_strategy,
)
from charlstm.errors import CharlstmError
from charlstm.keras_setup import keras
from charlstm.log import Log, log_to_stderr
from charlstm.model import build_model, compile_model, import_weights
from charlstm.options import TrainOptions
from charlstm.portable import save_inference_model
from charlstm.preflight import TrainingRun, preflight

VAL_BATCH_SIZE = 512  # names per validation batch


def train(
    names_files: str | Path | list[str | Path],
    model_dir: str | Path,
    opts: TrainOptions,
    *,
    resume: bool = False,
    overwrite: bool = False,
    explicit: frozenset[str] = frozenset(),
    started: float | None = None,
    log: Log = log_to_stderr,
) -> dict:
    """Train on ``names_files`` into ``model_dir``; return the final training record.

    :func:`charlstm.preflight.preflight` (checks, locks, reads the names), then
    :func:`train_run`; see both.
    """
    started = time.monotonic() if started is None else started
    checked = preflight(
        names_files, model_dir, opts, resume=resume, overwrite=overwrite, explicit=explicit, log=log
    )
    with checked as run:
        return train_run(run, started)


def train_run(run: TrainingRun, started: float | None = None) -> dict:
    """Train ``run``; return the final training record (``model.json``'s ``training``, as JSON).

    ``started`` is the ``time.monotonic()`` the time limit counts from (default: now).
    The record's ``stopped`` says why training ended; ``signal`` is set when SIGINT or
    SIGTERM interrupted it (the state is saved; ``--resume`` continues). A fine-tuning
    may train twice (:func:`_against_base`).
    """
    started = time.monotonic() if started is None else started
    strategy = select_strategy(run.opts.strategy, run.log)  # first: logical devices must precede TF's start
    if not is_multiworker(strategy):
        begun = time.monotonic()
        first = _train(run, strategy, started)
        took = time.monotonic() - begun  # the first training alone, without TensorFlow's start
        record, start = _against_base(run, strategy, first, started)
        return _soup(run, strategy, record, start, started, took)
    with lost_workers_as_errors():  # a multi-worker fine-tuning trains once: no second start, no soup
        return _against_base(run, strategy, _train(run, strategy, started), started)[0]


def _against_base(run: TrainingRun, strategy, record: dict, started: float) -> tuple[dict, TrainingRun]:
    """A fine-tuning that ends above its base unchanged on the held-out names (a file close
    to the base's style, which the shrunk start has partly forgotten) trains once more from
    the base's weights unshrunk, if the shrink was fine-tuning's default
    (:attr:`TrainingRun.retry`) and as much time is left as the first took; else says so.
    Returns the record and the run whose start was kept.
    """
    best, base = record["best_val_nll"], record["base_val_nll"]
    if record["signal"] is not None or best is None or base is None or best <= base:
        return record, run
    spent = time.monotonic() - started
    deadline = None if run.opts.time_limit is None else started + run.opts.time_limit
    if run.retry is not None and (deadline is None or deadline - time.monotonic() >= spent):
        return _train_unshrunk(run, strategy, record, started)
    _say_base_is_better(run)
    return record, run


def _train_unshrunk(run: TrainingRun, strategy, record: dict, started: float) -> tuple[dict, TrainingRun]:
    """Fine-tune ``run.retry`` (unshrunk) beside ``run``; keep the better by validation NLL.

    The second training saves into its own directory inside the first's, so the first
    model stands until the second has done better; then its files replace the first's.
    Interrupted, the second stays there, resumable as a model directory of its own.
    """
    retry, log, first = run.retry, run.log, record["best_val_nll"]
    log(
        f"fine-tuning once more, from the base's weights unshrunk (--init-shrink 1) into {retry.model_dir}, "
        "to keep the better of the two"
    )
    retry.model_dir.mkdir()  # an earlier one's, interrupted, went with this run's --overwrite
    keras.backend.clear_session()
    again = _train(retry, strategy, started)
    if again["signal"] is not None:
        log(f"the first fine-tuning stays in {run.model_dir}")
        return {**record, "signal": again["signal"]}, run
    kept = run
    if again["best_val_nll"] < first:
        ckpt.adopt_training(retry.model_dir, run.model_dir)
        log(f"kept the second: validation NLL {again['best_val_nll']:.4f} against {first:.4f}; "
            f"model saved in {run.model_dir}")  # fmt: skip
        record, kept = again, retry
    else:
        shutil.rmtree(retry.model_dir)
        log(f"kept the first: validation NLL {first:.4f} against {again['best_val_nll']:.4f}")
    if record["best_val_nll"] > record["base_val_nll"]:
        _say_base_is_better(retry)
    return record, kept


def _soup(run: TrainingRun, strategy, record: dict, start: TrainingRun, started: float, took: float) -> dict:
    """Fine-tune ``--soup`` - 1 more times from the kept start with the next seeds, and
    average the best weights of all of them; keep the average if it validates better.

    Fine-tunings from one start stay in one basin of the loss, so the mean of their
    weights predicts like an ensemble of them at the cost of one model (a model soup,
    Wortsman et al., 2022); from different random starts it would not. Each trains in
    ``DIR/soup``, as many as fit in the time left with at least the time the first took
    (``took``), sharing it equally; an interrupted soup leaves the first in DIR.
    """
    opts, log, n = run.opts, run.log, run.opts.soup
    if n < 2 or record["signal"] is not None or record["best_val_nll"] is None or start.init_weights is None:
        return record  # (a resumed fine-tuning has no start weights: it is not souped again)
    deadline = None if opts.time_limit is None else started + opts.time_limit
    soup_dir, weights = run.model_dir / ckpt.SOUP_DIR, [ckpt.read_arrays(run.model_dir / ckpt.WEIGHTS_FILE)]
    nlls = [record["best_val_nll"]]
    for k in range(1, n):
        share = None
        if deadline is not None:  # as many more as fit with the time the first took, sharing what is left
            left = deadline - time.monotonic()
            fit = min(n - k, int(left / took))
            if fit < 1:
                log(f"model soup: no time left for more fine-tunings after {k} of {n} (--time-limit)")
                break
            share = left / fit
        seed = start.opts.seed + k
        log(f"model soup: fine-tuning {k + 1} of {n} (--seed {seed}) into {soup_dir}")
        ingredient = replace(
            start, model_dir=soup_dir, opts=replace(start.opts, seed=seed, time_limit=share), overwrite=True,
            meta=copy.deepcopy(start.meta), state=ckpt.TrainingState(), retry=None,
        )  # fmt: skip
        soup_dir.mkdir(exist_ok=True)
        keras.backend.clear_session()
        again = _train(ingredient, strategy, time.monotonic())
        if again["signal"] is not None:
            shutil.rmtree(soup_dir)
            log(f"the first fine-tuning stays in {run.model_dir}")
            return {**record, "signal": again["signal"]}
        weights.append(ckpt.read_arrays(soup_dir / ckpt.WEIGHTS_FILE))
        nlls.append(again["best_val_nll"])
        shutil.rmtree(soup_dir)
    if len(weights) < 2:
        return record
    average = {key: np.mean([w[key] for w in weights], axis=0) for key in weights[0]}
    model = build_model(len(run.alphabet), start.meta.architecture, n_tags=len(start.meta.tags))
    import_weights(model, average)
    compile_model(model, opts.learning_rate, opts.clipnorm, opts.weight_decay)  # evaluate needs its metrics
    val_plan = BatchPlan(run.val_names, run.alphabet, VAL_BATCH_SIZE, None, 1, run.val_tags)
    result = model.evaluate(val_plan.dataset(None), steps=val_plan.n_batches, verbose=0, return_dict=True)
    nll, each = float(result["nll"]), ", ".join(f"{x:.4f}" for x in nlls)
    if nll >= nlls[0]:
        log(f"model soup: the average of {len(weights)} fine-tunings validates at {nll:.4f} nats, "
            f"no better than the first (each: {each}); kept the first")  # fmt: skip
        return record
    training = start.meta.training
    training.soup, training.best_val_nll, training.averaged_epochs = len(weights), nll, None
    save_inference_model(run.model_dir / ckpt.KERAS_FILE, model, start.meta)
    ckpt.write_arrays(run.model_dir / ckpt.WEIGHTS_FILE, average)
    ckpt.write_meta(run.model_dir, start.meta)
    ckpt.write_best(run.model_dir, nll)
    log(f"model soup: kept the average of {len(weights)} fine-tunings: val_nll {nll:.4f} nats "
        f"({nll / math.log(2):.3f} bits; each alone: {each}); model saved in {run.model_dir}")  # fmt: skip
    return {**asdict(training), "signal": None}


def _say_base_is_better(run: TrainingRun) -> None:
    """Tell the user that the base unchanged predicts the held-out names better."""
    shrunk = run.opts.init_shrink < 1
    run.log(
        "note: the base model unchanged predicts the held-out names better than this fine-tuning; "
        f"for a file this close to its style, {'try --init-shrink 1, or ' if shrunk else ''}"
        "use the base model itself"
    )


def choose_schedule(opts: TrainOptions, deadline: float | None) -> str:
    """``cosine`` or ``plateau``: cosine anneals to the deadline, so it needs one; auto picks it then."""
    return "cosine" if deadline is not None and opts.lr_schedule in ("auto", "cosine") else "plateau"


@dataclass
class _Fit:
    """What fitting needs, built from a run: the model, its batches and its callbacks."""

    model: keras.Model
    plan: BatchPlan
    val_plan: BatchPlan | None
    callbacks: list
    early: keras.callbacks.EarlyStopping
    control: StopControl
    monitor: str


def _train(run: TrainingRun, strategy, started: float) -> dict:
    """:func:`train_run` under ``strategy``: build or resume, callbacks, fit, finish."""
    opts, log = run.opts, run.log
    deadline = None if opts.time_limit is None else started + opts.time_limit
    schedule = choose_schedule(opts, deadline)
    multiworker = is_multiworker(strategy)
    worker_max = largest_among_workers(strategy) if multiworker else own_value
    if multiworker:
        _check_same_run(worker_max, run, schedule)
    model = _build_or_resume(run, strategy)
    fit = _assemble(run, model, strategy.num_replicas_in_sync, schedule, deadline, worker_max, multiworker)
    where = run.model_dir if run.chief else "the chief's model directory"
    log(
        f"training {run.meta.parameters:,}-parameter model on {len(run.train_names):,} names "
        f"({len(run.val_names):,} for validation) into {where}"
    )
    if run.state.epoch >= opts.epochs:
        log(f"already trained {run.state.epoch} epochs; raise --epochs to train more")
        return asdict(run.meta.training)
    _fit(run, fit, strategy, multiworker)
    return _finish(run, fit, where, multiworker)


def _build_or_resume(run: TrainingRun, strategy) -> keras.Model:
    """The model to train, built or loaded inside ``strategy``'s scope; records its size."""
    opts, model_dir = run.opts, run.model_dir
    if run.overwrite and not run.resume:
        ckpt.clear_state(model_dir)
        for extra in (ckpt.RETRY_DIR, ckpt.SOUP_DIR):  # an earlier fine-tuning's second start or soup
            shutil.rmtree(model_dir / extra, ignore_errors=True)
    ckpt.write_training_names(model_dir, set(run.train_names))
    keras.utils.set_random_seed(opts.seed + run.state.step)
    with strategy.scope():  # variables live on every replica; Keras splits each batch among them
        if run.resume:
            model = keras.models.load_model(model_dir / ckpt.STATE_DIR / run.state.model)
            model.optimizer.learning_rate.assign(run.state.learning_rate)
        else:
            model = build_model(len(run.alphabet), opts.architecture, n_tags=len(run.meta.tags))
            if run.init_weights is not None:  # a fine-tuning: the base's weights, a fresh optimizer
                import_weights(model, run.init_weights)
            compile_model(model, opts.learning_rate, opts.clipnorm, opts.weight_decay)
    run.meta.parameters = sum(int(np.prod(w.shape)) for w in model.trainable_weights)  # not the one-hot table
    return model


def _assemble(
    run: TrainingRun,
    model: keras.Model,
    replicas: int,
    schedule: str,
    deadline: float | None,
    worker_max: WorkerMax,
    multiworker: bool,
) -> _Fit:
    """Batch plans and callbacks, in the order Keras must call them."""
    opts = run.opts
    plan = BatchPlan(
        run.train_names, run.alphabet, opts.batch_size, opts.seed, replicas, run.train_tags, opts.balance_tags
    )
    val_plan = None
    if run.val_names:
        val_plan = BatchPlan(run.val_names, run.alphabet, VAL_BATCH_SIZE, None, replicas, run.val_tags)
    monitor = "val_nll" if val_plan is not None else "nll"
    # The cosine schedule's last epochs, at a small learning rate, are usually its best:
    # it runs to the deadline (still keeping the best epoch) instead of stopping early.
    patience = opts.patience if schedule != "cosine" else opts.epochs
    early = keras.callbacks.EarlyStopping(monitor=monitor, mode="min", patience=patience)
    stateful: list = [early]
    known = set(run.train_names)
    report = EpochReport(run.meta, plan, known, opts.samples_per_epoch, opts.seed, run.log)
    callbacks: list = [report, keras.callbacks.TerminateOnNaN()]
    averaging = schedule == "cosine" and val_plan is not None and opts.average_from < 1 and not multiworker
    floor = AVERAGING_FLOOR if averaging else COSINE_FLOOR
    if schedule == "cosine":
        steps = max(opts.epochs * plan.n_batches - run.state.step, 1)  # batches left to the last epoch
        callbacks.append(CosineToDeadline(deadline, steps, worker_max=worker_max, floor=floor))
    else:
        plateau = keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode="min", factor=0.5, patience=max(1, opts.patience // 2 - 1), min_lr=1e-5
        )
        stateful.append(plateau)
        callbacks.append(plateau)
    if opts.tensorboard and run.chief:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=opts.tensorboard, write_graph=False))
    callbacks += [early, RestoreCallbackState(run.state.callbacks, stateful)]
    averager = None
    if averaging:
        start_lr = opts.learning_rate * cosine_scale(opts.average_from, floor)
        averager = WeightAverage(
            run.model_dir, run.state, start_lr, val_plan.dataset(None), val_plan.n_batches, run.log
        )
        callbacks.append(averager)
    checkpointer = Checkpointer(
        run.model_dir, run.meta, monitor, run.state, stateful, opts.state_interval, worker_max, averager
    )
    val_symbols = val_plan.symbols if val_plan else 0
    control = StopControl(
        deadline,
        val_symbols,
        plan.symbols / plan.n_batches,
        checkpointer,
        worker_max if multiworker else None,
        val_passes=2 if averager else 1,
    )
    callbacks += [checkpointer, control]
    return _Fit(model, plan, val_plan, callbacks, early, control, monitor)


def _fit(run: TrainingRun, fit: _Fit, strategy, multiworker: bool) -> None:
    """Fit until the epochs run out, early stopping, the time limit or a signal."""
    opts, state, plan, val_plan = run.opts, run.state, fit.plan, fit.val_plan
    previous = {s: signal.signal(s, fit.control.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Keras writes its progress bar to stdout; stdout is kept for results.
        with contextlib.redirect_stdout(sys.stderr):
            if multiworker:  # each worker reads its replicas' shares of every batch
                distribute = strategy.distribute_datasets_from_function
                fit_across_workers(
                    fit.model,
                    strategy,
                    distribute(lambda context: plan.dataset(state.step, context)),
                    plan.n_batches,
                    distribute(lambda context: val_plan.dataset(None, context)) if val_plan else None,
                    val_plan.n_batches if val_plan else 0,
                    opts.epochs,
                    state.epoch,
                    fit.callbacks,
                )
            else:
                fit.model.fit(
                    plan.dataset(state.step),
                    steps_per_epoch=plan.n_batches,
                    validation_data=val_plan.dataset(None) if val_plan else None,
                    epochs=opts.epochs,
                    initial_epoch=state.epoch,
                    callbacks=fit.callbacks,
                    shuffle=False,  # the batch plan shuffles, seeded
                    verbose=1 if sys.stderr.isatty() else 0,
                )
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _finish(run: TrainingRun, fit: _Fit, where: object, multiworker: bool) -> dict:
    """Record why training stopped, say so, and tell how to resume after a signal."""
    control, log = fit.control, run.log
    stopped = control.reason or ("early stopping" if fit.early.stopped_epoch else "epochs")
    run.meta.training.stopped = stopped
    ckpt.write_meta(run.model_dir, run.meta)
    best, base = run.state.best_or_inf, run.meta.training.base_val_nll
    than_base = ""
    if base is not None and fit.monitor == "val_nll":  # a fine-tuning (see preflight._init_weights)
        than_base = f" (the base model unchanged: {base:.4f})"
    averaged = run.meta.training.averaged_epochs
    kept = f"best epoch {run.meta.training.best_epoch}"
    if averaged:
        kept = f"kept the weights averaged over epochs {averaged[0]}-{averaged[1]}"
    log(f"stopped ({stopped}); {kept}: {fit.monitor} {best:.4f} nats{than_base}; model saved in {where}")
    if control.signal is not None and run.chief:
        log(
            f"training state saved; to continue{' on one machine' if multiworker else ''}: charlstm train "
            f"{shlex.join(run.names_files)} --model {shlex.quote(str(run.model_dir))} --resume"
        )
    return {**asdict(run.meta.training), "signal": control.signal}


def _check_same_run(worker_max: WorkerMax, run: TrainingRun, schedule: str) -> None:
    """Refuse to start unless every worker has the same names and batch-shaping options.

    Workers that disagree would split different batches, or wait for each other in
    different collective operations, forever.
    """
    opts = run.opts
    shaping = [opts.epochs, opts.batch_size, opts.learning_rate, opts.seed, opts.patience, opts.clipnorm,
               opts.weight_decay,
               opts.architecture.to_json(), run.alphabet.to_json(), schedule, run.train_names,
               run.val_names, run.meta.tags, run.train_tags, run.val_tags]  # fmt: skip
    mine = float(zlib.crc32(json.dumps(shaping).encode()) & 0xFFFFFF)  # exact in float32
    if worker_max(mine) != -worker_max(-mine):
        raise CharlstmError(
            "--strategy multiworker: the workers were given different names or options; run the "
            "same command on the same names file on every machine (only TF_CONFIG differs)"
        )
