"""Training options, and everything ``charlstm train`` checks before TensorFlow starts.

Importing TensorFlow takes seconds, so what can fail without it fails first:
:func:`prepare_training` locks the model directory (:mod:`charlstm.lock`), refuses
one that already holds a model unless resumed or overwritten, merges a resumed
run's saved options, and reads and checks the names files (:mod:`charlstm.data`).
It hands the names on, so nothing is read twice, and
:func:`charlstm.training.train_prepared` trains. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from charlstm import __version__
from charlstm import checkpoint as ckpt
from charlstm.alphabet import Alphabet
from charlstm.data import DEFAULT_MAX_LENGTH, load_names, split_names
from charlstm.distribute import cluster_task
from charlstm.errors import CharlstmError
from charlstm.lock import lock_model_dir

Log = Callable[[str], None]

STATE_FILE = "state.json"
STATE_INTERVAL = 60.0  # seconds of training between two state checkpoints, at most
# Options a resumed run keeps from the saved run unless given again. The time limit
# is not among them: it is a budget for one invocation.
_INHERITED = ("epochs", "batch_size", "learning_rate", "val_fraction", "val_file", "seed", "patience",
              "clipnorm", "max_name_length", "strict", "lr_schedule")  # fmt: skip


def log_to_stderr(message: str) -> None:
    """The default log: one line on stderr, at once."""
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Architecture:
    """Shape of the network. Defaults keep Keras on its fused (cuDNN) LSTM kernel."""

    hidden: int = 256
    layers: int = 2
    dropout: float = 0.3
    recurrent_dropout: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Architecture:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


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
    lr_schedule: str = "auto"  # "auto": cosine with a time limit, else plateau
    samples_per_epoch: int = 5
    tensorboard: str | None = None
    state_interval: float = STATE_INTERVAL
    alphabet: str = "default"  # or "auto": every symbol of the training file
    strategy: str = "auto"  # see charlstm.distribute

    def to_json(self) -> dict:
        data = asdict(self)
        data["architecture"] = self.architecture.to_json()
        return data


@dataclass
class PreparedRun:
    """A training run whose input is read and checked, ready for TensorFlow."""

    names_file: str
    model_dir: Path  # where this process saves (it exists): --model, or a scratch directory
    chief: bool  # False for a multiworker worker other than the chief, which saves into scratch
    opts: TrainOptions  # a resumed run's saved options merged in
    resume: bool
    overwrite: bool
    meta: dict  # model.json to be, its training record filled in but for the results
    state: dict  # the training state to continue from (a fresh one unless resumed)
    alphabet: Alphabet
    train_names: list[str]
    val_names: list[str]
    log: Log


@contextlib.contextmanager
def prepare_training(
    names_file: str | Path,
    model_dir: str | Path,
    opts: TrainOptions,
    *,
    resume: bool = False,
    overwrite: bool = False,
    given: frozenset[str] = frozenset(),
    log: Log = log_to_stderr,
) -> Iterator[PreparedRun]:
    """Check and read what training ``names_file`` into ``model_dir`` needs; yield the run.

    ``model_dir``'s training lock is held for the ``with`` block. On resume, the
    options not named in ``given`` take their saved values (in ``opts`` too). With
    ``opts.strategy == "multiworker"`` only the chief (worker 0 in ``TF_CONFIG``)
    uses ``model_dir``; another worker neither locks nor checks it and saves into a
    temporary directory of its own, removed on exit (TensorFlow's advice: every
    worker saves, as saving may read variables collectively).
    """
    if opts.strategy == "multiworker":
        if resume:
            raise CharlstmError(
                "--resume cannot continue a multiworker training across machines yet; resume it on "
                "one machine (--strategy none or mirrored: its checkpoints are ordinary) or start afresh"
            )
        if cluster_task()[0] != 0:
            with tempfile.TemporaryDirectory(prefix="charlstm-worker-") as scratch:
                yield _prepare(names_file, Path(scratch), False, opts, False, False, given, log)
            return
    with lock_model_dir(model_dir):
        yield _prepare(names_file, Path(model_dir), True, opts, resume, overwrite, given, log)


def _prepare(
    names_file: str | Path,
    model_dir: Path,
    chief: bool,
    opts: TrainOptions,
    resume: bool,
    overwrite: bool,
    given: frozenset[str],
    log: Log,
) -> PreparedRun:
    """:func:`prepare_training` once ``model_dir`` is locked (or is scratch)."""
    if resume:
        meta, state = _resume_options(model_dir, opts, given)
    else:
        if (model_dir / ckpt.META_FILE).exists() and not overwrite:
            raise CharlstmError(
                f"{model_dir}: already holds a model; use --resume to continue it "
                "or --overwrite to replace it"
            )
        state = {"epoch": 0, "step": 0, "history": [], "callbacks": {}}
        meta = {
            "format_version": ckpt.FORMAT_VERSION,
            "charlstm_version": __version__,
            "alphabet": Alphabet().to_json(),
            "architecture": opts.architecture.to_json(),
        }
    # --alphabet auto derives the symbols from the file; a resumed run keeps its own.
    alphabet = None if opts.alphabet == "auto" and not resume else Alphabet.from_json(meta["alphabet"])
    corpus = load_names(names_file, alphabet, max_length=opts.max_name_length, strict=opts.strict)
    alphabet = corpus.alphabet
    meta["alphabet"] = alphabet.to_json()
    if corpus.skipped_summary():
        log(f"warning: {corpus.skipped_summary()}")
    if opts.val_file:
        train_names = corpus.names
        val_names = load_names(opts.val_file, alphabet, max_length=opts.max_name_length).names
    else:
        train_names, val_names = split_names(corpus.names, opts.val_fraction, opts.seed)
    meta["training"] = {
        **meta.get("training", {}),
        "file": str(names_file),
        "names": len(corpus.names),
        "train_names": len(train_names),
        "val_names": len(val_names),
        "options": opts.to_json(),
    }
    return PreparedRun(
        names_file=str(names_file),
        model_dir=model_dir,
        chief=chief,
        opts=opts,
        resume=resume,
        overwrite=overwrite,
        meta=meta,
        state=state,
        alphabet=alphabet,
        train_names=train_names,
        val_names=val_names,
        log=log,
    )


def _resume_options(model_dir: Path, opts: TrainOptions, given: frozenset[str]) -> tuple[dict, dict]:
    """Read the saved run and merge its options with those given again.

    Returns ``(meta, state)``. Architecture options given again must match.
    """
    opened = ckpt.open_model(model_dir)
    opened.lm()  # refuses weights sized for another alphabet than model.json's
    meta = opened.meta
    state_path = model_dir / ckpt.STATE_DIR / STATE_FILE
    if not state_path.is_file():
        raise CharlstmError(f"{state_path}: missing; nothing to resume")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        state_model = model_dir / ckpt.STATE_DIR / state["model"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CharlstmError(f"{state_path}: damaged training state ({exc})") from exc
    if not state_model.is_file():
        raise CharlstmError(f"{state_model}: missing; cannot resume")
    saved_arch = Architecture.from_json(meta["architecture"])
    clash = {
        k: (getattr(saved_arch, k), getattr(opts.architecture, k))
        for k in saved_arch.to_json()
        if k in given and getattr(saved_arch, k) != getattr(opts.architecture, k)
    }
    if clash:
        detail = ", ".join(f"--{k.replace('_', '-')} {new} (saved: {old})" for k, (old, new) in clash.items())
        raise CharlstmError(f"{model_dir}: cannot resume with another architecture: {detail}")
    opts.architecture = saved_arch
    saved = meta.get("training", {}).get("options", {})
    for f in fields(opts):
        if f.name in _INHERITED and f.name not in given and f.name in saved:
            setattr(opts, f.name, saved[f.name])
    return meta, state
