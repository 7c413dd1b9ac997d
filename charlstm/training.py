"""Training: input pipeline, Keras callbacks, checkpoints and resume."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from charlstm import __version__
from charlstm import checkpoint as ckpt
from charlstm.alphabet import Alphabet
from charlstm.data import DEFAULT_MAX_LENGTH, encode_names, load_names, split_names
from charlstm.errors import CharlstmError
from charlstm.lock import locks_model_dir
from charlstm.model import Architecture, build_model, compile_model, export_weights, keras
from charlstm.npmodel import NumpyLSTM
from charlstm.sampling import sample_names

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class TrainOptions:
    """Everything ``charlstm train`` can set, with its defaults."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    architecture: Architecture = field(default_factory=Architecture)
    val_fraction: float = 0.1
    val_file: str | None = None
    seed: int = 0
    patience: int = 5
    clipnorm: float = 1.0
    max_name_length: int = DEFAULT_MAX_LENGTH
    strict: bool = False
    time_limit: float | None = None
    samples_per_epoch: int = 5

    def to_json(self) -> dict:
        data = asdict(self)
        data["architecture"] = self.architecture.to_json()
        return data


def make_dataset(names: list[str], alphabet: Alphabet, batch_size: int, seed: int | None):
    """A tf.data pipeline of (inputs, targets) id batches, grouped by length.

    The corpus stays a flat int8 array; names of similar length are batched together
    so padding is small, inputs pad with the end marker and targets with -1 (ignored
    by the loss). ``seed=None`` means no shuffling (validation).
    """
    import tensorflow as tf

    flat, lengths = encode_names(names, alphabet)
    boundaries = list(range(3, int(lengths.max()) + 1))
    counts = np.bincount(np.searchsorted(boundaries, lengths, side="right"))
    n_batches = int(sum(math.ceil(c / batch_size) for c in counts))
    ds = tf.data.Dataset.from_tensor_slices(tf.RaggedTensor.from_row_lengths(flat, lengths))
    if seed is not None:
        ds = ds.shuffle(len(lengths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda s: (tf.cast(s[:-1], tf.int32), tf.cast(s[1:], tf.int32)))
    ds = ds.bucket_by_sequence_length(
        lambda x, y: tf.shape(x)[0],
        boundaries,
        [batch_size] * (len(boundaries) + 1),
        padding_values=(0, -1),
    )
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_batches))
    return ds.prefetch(tf.data.AUTOTUNE)


class EpochReport(keras.callbacks.Callback):
    """Logs one line per epoch (NLL in nats and bits, speed) and a few sampled names.

    Keras prints no per-epoch summary in a form fit for reading at a glance, nor
    samples, so this small callback does both. It also adds ``symbols_per_sec`` to
    the epoch logs, which CSVLogger then records.
    """

    def __init__(
        self, alphabet: Alphabet, train_symbols: int, known: set[str], opts: TrainOptions, log: Log
    ) -> None:
        super().__init__()
        self.alphabet, self.train_symbols, self.known, self.opts, self.log = (
            alphabet,
            train_symbols,
            known,
            opts,
            log,
        )
        self.rng = np.random.default_rng(opts.seed)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.monotonic()
        self.seen_batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seen_batches = batch + 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        elapsed = max(time.monotonic() - self.started, 1e-9)
        steps = self.params.get("steps") or self.seen_batches or 1
        logs["symbols_per_sec"] = self.train_symbols * min(self.seen_batches / steps, 1.0) / elapsed
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        line = f"epoch {epoch + 1}: train {logs['nll']:.4f} nats ({logs['bpc']:.3f} bits)"
        if "val_nll" in logs:
            line += f"  val {logs['val_nll']:.4f} nats ({logs['val_bpc']:.3f} bits)"
        line += f"  lr {logs['learning_rate']:.2g}  {logs['symbols_per_sec']:,.0f} symbols/s"
        self.log(line)
        if self.opts.samples_per_epoch:
            lm = NumpyLSTM.from_arrays(export_weights(self.model))
            seed = int(self.rng.integers(2**31))
            samples = sample_names(lm, self.alphabet, self.opts.samples_per_epoch, seed=seed, unique=False)
            shown = [f"{s.name} ({'seen' if s.name in self.known else 'new'})" for s in samples]
            self.log("  samples: " + ", ".join(shown))


class Checkpointer(keras.callbacks.Callback):
    """Writes the best model and the latest training state, atomically, every epoch.

    Keras' ModelCheckpoint and BackupAndRestore write their files in place, so a
    crash mid-write leaves a truncated file where the good one was; and neither
    records the early-stopping and learning-rate schedule state that an exact resume
    needs. This callback saves through :func:`charlstm.checkpoint.atomic_write`.
    """

    def __init__(self, model_dir: Path, meta: dict, monitor: str, state: dict, stateful: list) -> None:
        super().__init__()
        self.dir, self.meta, self.monitor, self.state, self.stateful = (
            model_dir,
            meta,
            monitor,
            state,
            stateful,
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        current = float(logs.get(self.monitor, math.inf))
        record = {k: float(v) for k, v in logs.items()}
        self.state["history"].append({"epoch": epoch + 1, **record})
        self.state["epoch"] = epoch + 1
        if current < self.state.get("best", math.inf):
            self.state.update(best=current, best_epoch=epoch + 1)
            ckpt.save_keras(self.dir / ckpt.KERAS_FILE, self.model)
            ckpt.write_arrays(self.dir / ckpt.WEIGHTS_FILE, export_weights(self.model))
        self.state["callbacks"] = {type(cb).__name__: _callback_state(cb) for cb in self.stateful}
        state_dir = self.dir / ckpt.STATE_DIR
        state_dir.mkdir(exist_ok=True)
        ckpt.save_keras(state_dir / "latest.keras", self.model)
        ckpt.write_json(state_dir / "state.json", self.state)
        self.meta["training"].update(
            epochs=epoch + 1,
            best_epoch=self.state.get("best_epoch"),
            best_val_nll=self.state.get("best") if self.monitor == "val_nll" else None,
            best_train_nll=self.state.get("best") if self.monitor == "nll" else None,
        )
        ckpt.write_json(self.dir / ckpt.META_FILE, self.meta)


_STATE_KEYS = ("wait", "best", "cooldown_counter", "stopped_epoch")


def _callback_state(cb: keras.callbacks.Callback) -> dict:
    return {k: float(getattr(cb, k)) for k in _STATE_KEYS if hasattr(cb, k)}


class RestoreCallbackState(keras.callbacks.Callback):
    """Puts early-stopping and plateau counters back after they reset at train begin."""

    def __init__(self, saved: dict, stateful: list) -> None:
        super().__init__()
        self.saved, self.stateful = saved, stateful

    def on_train_begin(self, logs: dict | None = None) -> None:
        for cb in self.stateful:
            for key, value in self.saved.get(type(cb).__name__, {}).items():
                setattr(cb, key, type(getattr(cb, key))(value) if key != "best" else value)


class TimeLimit(keras.callbacks.Callback):
    """Stops training at a wall-clock deadline, after the current batch."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if time.monotonic() >= self.deadline:
            self.model.stop_training = True


@locks_model_dir  # one training per model directory (see charlstm.lock)
def train(
    names_file: str | Path,
    model_dir: str | Path,
    opts: TrainOptions,
    *,
    resume: bool = False,
    overwrite: bool = False,
    started: float | None = None,
    log: Log = _stderr,
) -> dict:
    """Train on ``names_file`` into ``model_dir``; return the final training record.

    ``started`` is the ``time.monotonic()`` the time limit counts from (default: now).
    """
    started = time.monotonic() if started is None else started
    model_dir = Path(model_dir)
    alphabet = Alphabet()
    corpus = load_names(names_file, alphabet, max_length=opts.max_name_length, strict=opts.strict)
    if corpus.skipped_summary():
        log(f"warning: {corpus.skipped_summary()}")

    state: dict = {"epoch": 0, "history": [], "callbacks": {}}
    if resume:
        meta = ckpt.open_model(model_dir).meta
        state_path = model_dir / ckpt.STATE_DIR / "state.json"
        if not state_path.is_file():
            raise CharlstmError(f"{state_path}: missing; nothing to resume")
        import json

        state = json.loads(state_path.read_text())
        if Alphabet.from_json(meta["alphabet"]) != alphabet:
            raise CharlstmError(f"{model_dir}: the model was trained with another alphabet; cannot resume")
        saved_arch = Architecture.from_json(meta["architecture"])
        if saved_arch != opts.architecture:
            raise CharlstmError(
                f"{model_dir}: the model's architecture {saved_arch.to_json()} differs from "
                f"the options given {opts.architecture.to_json()}; cannot resume"
            )
    else:
        if model_dir.exists() and not model_dir.is_dir():
            raise CharlstmError(f"{model_dir}: is a file, expected a model directory")
        if (model_dir / ckpt.META_FILE).exists() and not overwrite:
            raise CharlstmError(
                f"{model_dir}: already holds a model; use --resume to continue it "
                "or --overwrite to replace it"
            )
        model_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": ckpt.FORMAT_VERSION,
            "charlstm_version": __version__,
            "alphabet": alphabet.to_json(),
            "architecture": opts.architecture.to_json(),
        }

    if opts.val_file:
        train_names = corpus.names
        val_names = load_names(opts.val_file, alphabet, max_length=opts.max_name_length).names
    else:
        train_names, val_names = split_names(corpus.names, opts.val_fraction, opts.seed)
    known = set(train_names)
    ckpt.write_text(model_dir / ckpt.NAMES_FILE, "".join(f"{n}\n" for n in sorted(known)))

    keras.utils.set_random_seed(opts.seed + state["epoch"])
    if resume:
        model = keras.models.load_model(model_dir / ckpt.STATE_DIR / "latest.keras")
    else:
        model = build_model(len(alphabet), opts.architecture)
        compile_model(model, opts.learning_rate, opts.clipnorm)
    parameters = int(model.count_params())
    meta["parameters"] = parameters
    meta["training"] = {
        **meta.get("training", {}),
        "file": str(names_file),
        "names": len(corpus.names),
        "train_names": len(train_names),
        "val_names": len(val_names),
        "options": opts.to_json(),
    }

    train_ds = make_dataset(train_names, alphabet, opts.batch_size, opts.seed + state["epoch"])
    val_ds = make_dataset(val_names, alphabet, 512, None) if val_names else None
    monitor = "val_nll" if val_ds is not None else "nll"
    early = keras.callbacks.EarlyStopping(monitor=monitor, mode="min", patience=opts.patience)
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor=monitor, mode="min", factor=0.5, patience=max(1, opts.patience // 2 - 1), min_lr=1e-5
    )
    stateful = [early, plateau]
    callbacks = [
        EpochReport(alphabet, sum(len(n) + 1 for n in train_names), known, opts, log),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(model_dir / ckpt.HISTORY_FILE), append=resume),
        early,
        plateau,
        RestoreCallbackState(state.get("callbacks", {}), stateful),
        Checkpointer(model_dir, meta, monitor, state, stateful),
    ]
    if opts.time_limit is not None:
        callbacks.append(TimeLimit(started + opts.time_limit))
    log(
        f"training {parameters:,}-parameter model on {len(train_names):,} names "
        f"({len(val_names):,} for validation) into {model_dir}"
    )
    if state["epoch"] >= opts.epochs:
        log(f"already trained {state['epoch']} epochs; raise --epochs to train more")
        return meta["training"]
    # Keras writes its progress bar to stdout; stdout is kept for results.
    with contextlib.redirect_stdout(sys.stderr):
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=opts.epochs,
            initial_epoch=state["epoch"],
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles itself, seeded
            verbose=1 if sys.stderr.isatty() else 0,
        )
    log(
        f"best epoch {meta['training'].get('best_epoch')}: {monitor} {state.get('best', math.nan):.4f} nats; "
        f"model saved in {model_dir}"
    )
    return meta["training"]
