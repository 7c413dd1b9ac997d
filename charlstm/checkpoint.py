"""Model directories: what they hold, how they are written safely and found.

This module owns the format. A model directory is self-contained::

    model.json          format version, alphabet, architecture, training record (:class:`ModelMeta`)
    weights.npz         the best weights as plain arrays (fast inference, no TensorFlow)
    model.keras         the best model in Keras' own format
    training-names.txt  the distinct training names (for ``generate --novel``)
    history.csv         per-epoch metrics, one row per epoch (:func:`write_history`)
    state/              the latest training state, for ``train --resume``: ``state.json``
                        (:class:`TrainingState`) and the ``step-N.keras`` file it names

Every file is written to a temporary name in the same directory and renamed over the
old one, so a crash at any moment leaves the previous file whole.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from charlstm import __version__
from charlstm.alphabet import Alphabet
from charlstm.errors import CharlstmError, OptionError
from charlstm.options import BUNDLED, Architecture

FORMAT_VERSION = 2  # 2: tags (1, without them, is still read)
DEFAULT_MODEL_DIR = "charlstm-model"
MODEL_ENV = "CHARLSTM_MODEL"
META_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"
KERAS_FILE = "model.keras"
NAMES_FILE = "training-names.txt"
HISTORY_FILE = "history.csv"
STATE_DIR = "state"
STATE_FILE = "state.json"
RETRY_DIR = "unshrunk"  # a fine-tuning's second start trains here (training._train_unshrunk)
SOUP_DIR = "soup"  # the other fine-tunings of a model soup train here, one after another (training._soup)

BUNDLED_DIR = Path(__file__).parent / "pretrained"

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it into place.

    ``suffix`` lets writers that insist on an extension (Keras wants ``.keras``) have it.
    On any failure the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; keep the usual mode
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise CharlstmError(f"{path}: cannot save: {exc.strerror or exc}") from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path | None) -> None:
    """Delete a temporary file, if there is one; a failure to do so is not news."""
    if tmp is not None:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def remove_temp_files(model_dir: str | Path) -> int:
    """Delete the temporary files a killed save left in ``model_dir``; return how many.

    Call it only while holding the directory's training lock, when no save can be
    under way.
    """
    stale = [p for p in Path(model_dir).rglob(".*.tmp*") if p.is_file()]
    for tmp in stale:
        _remove(tmp)
    return len(stale)


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_arrays(path: str | Path, arrays: dict) -> None:
    """Atomically write numpy arrays as an ``.npz`` file."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(path, write)


def read_arrays(path: str | Path) -> dict[str, Any]:
    """The numpy arrays of an ``.npz`` file, read whole (the file is closed)."""
    import numpy as np

    with np.load(path) as data:
        return dict(data)


def save_keras(path: str | Path, model: Any) -> None:
    """Atomically save a Keras model in the ``.keras`` format."""
    atomic_write(path, lambda tmp: model.save(tmp), suffix=".keras")


@dataclass
class TrainingRecord:
    """``model.json``'s ``training``: what the model was trained on and how it went."""

    file: str | None = None  # the names file
    names: int | None = None  # its usable names
    train_names: int | None = None  # of which trained on
    val_names: int | None = None  # and held out for validation
    options: dict = field(default_factory=dict)  # the run's TrainOptions, as JSON
    epochs: int | None = None  # epochs trained so far
    best_epoch: int | None = None  # the epoch whose weights are saved
    best_val_nll: float | None = None  # its validation NLL (nats per symbol)...
    best_train_nll: float | None = None  # ... or its training NLL, without validation
    stopped: str | None = None  # why training ended: epochs, early stopping, time limit, interrupted
    base_val_nll: float | None = None  # a fine-tuning's base model, unchanged, on the same held-out names
    averaged_epochs: list[int] | None = None  # [first, last]: the saved weights average these epochs'
    soup: int | None = None  # or the best weights of this many fine-tunings from the same start

    @classmethod
    def from_json(cls, data: dict) -> TrainingRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class BaseModel:
    """``model.json``'s ``base``: the model a fine-tuned one started from (``train --init-from``)."""

    path: str  # the model directory as given, or "bundled"
    format_version: int  # its model.json's format version
    weights_sha256: str  # hex SHA-256 of its weights.npz, as read when training started

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object, where: Path) -> BaseModel | None:
        if data is None:
            return None
        try:
            return cls(str(data["path"]), int(data["format_version"]), str(data["weights_sha256"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise CharlstmError(f"{where}: damaged model metadata (base: {exc})") from exc


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ModelMeta:
    """What ``model.json`` holds."""

    alphabet: Alphabet
    architecture: Architecture
    training: TrainingRecord = field(default_factory=TrainingRecord)
    parameters: int | None = None  # trainable and frozen weights of the Keras model
    format_version: int = FORMAT_VERSION  # the version it was written in
    charlstm_version: str | None = __version__
    tags: list[str] = field(default_factory=list)  # in embedding-id order; empty: an untagged model
    tag_counts: dict[str, int] = field(default_factory=dict)  # training names under each tag
    family_tag: str | None = None  # the tag of family names (generate --full), if any
    base: BaseModel | None = None  # the model it was fine-tuned from (train --init-from), if any

    def to_json(self) -> dict:
        data = {
            "format_version": self.format_version,
            "charlstm_version": self.charlstm_version,
            "alphabet": self.alphabet.to_json(),
            "architecture": self.architecture.to_json(),
            "parameters": self.parameters,
            "training": asdict(self.training),
        }
        if self.tags:
            data.update(tags=self.tags, tag_counts=self.tag_counts, family_tag=self.family_tag)
        if self.base is not None:
            data["base"] = self.base.to_json()
        return data

    def tag_weights(self, tags: list[str] | None = None) -> dict[str, float]:
        """Training frequencies of ``tags`` (default: every tag), normalised to sum to 1."""
        chosen = self.tags if tags is None else tags
        counts = [max(self.tag_counts.get(t, 0), 0) for t in chosen]
        total = sum(counts)
        return {t: (c / total if total else 1 / len(chosen)) for t, c in zip(chosen, counts, strict=True)}

    @classmethod
    def from_json(cls, data: dict, where: Path) -> ModelMeta:
        """The record in ``data`` (read from ``where``); :class:`CharlstmError` if malformed."""
        version = data.get("format_version") if isinstance(data, dict) else None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CharlstmError(f"{where}: damaged model metadata (no valid format_version)")
        for key in ("architecture", "training"):
            if not isinstance(data.get(key, {}), dict):
                raise CharlstmError(f"{where}: damaged model metadata ({key} is not an object)")
        if version > FORMAT_VERSION:
            raise CharlstmError(
                f"{where}: format version {version} is newer than this "
                f"charlstm understands ({FORMAT_VERSION}); upgrade charlstm"
            )
        if "alphabet" not in data:
            raise CharlstmError(f"{where}: damaged model metadata (no alphabet)")
        try:
            alphabet = Alphabet.from_json(data["alphabet"])
        except CharlstmError as exc:
            raise CharlstmError(f"{where}: damaged alphabet ({exc})") from exc
        return cls(
            alphabet=alphabet,
            architecture=Architecture.from_json(data.get("architecture", {})),
            training=TrainingRecord.from_json(data.get("training", {})),
            parameters=data.get("parameters"),
            format_version=version,
            charlstm_version=data.get("charlstm_version"),
            base=BaseModel.from_json(data.get("base"), where),
            **_tag_fields(data, where),
        )

    def summary(self) -> dict:
        """The facts ``charlstm info`` prints, in its order (tags only for a tagged model)."""
        arch = self.architecture.to_json() if self.tags else self.architecture.untagged()
        tagged = {"tags": {t: self.tag_counts.get(t, 0) for t in self.tags}, "family_tag": self.family_tag}
        fine_tuned = {}  # the base model, and its NLL on the fine-tuning's held-out names
        if self.base:
            fine_tuned = {"base_model": self.base.to_json(), "base_val_nll": self.training.base_val_nll}
        return {
            "format_version": self.format_version,
            "alphabet": "".join(self.alphabet.symbols).replace("\n", "\\n"),
            "architecture": dict(sorted(arch.items())),  # as model.json has it
            **(tagged if self.tags else {}),
            "parameters": self.parameters,
            "epochs": self.training.epochs,
            "best_epoch": self.training.best_epoch,
            **({"averaged_epochs": self.training.averaged_epochs} if self.training.averaged_epochs else {}),
            **({"soup": self.training.soup} if self.training.soup else {}),
            "best_val_nll": self.training.best_val_nll,
            "training_file": self.training.file,
            "training_names": self.training.names,
            **fine_tuned,
        }


def _tag_fields(data: dict, where: Path) -> dict:
    """``tags``, ``tag_counts`` and ``family_tag`` of model.json, checked."""
    tags, counts, family = data.get("tags", []), data.get("tag_counts", {}), data.get("family_tag")
    names_ok = isinstance(tags, list) and all(isinstance(t, str) and t for t in tags)
    if not names_ok or len(set(tags)) < len(tags):
        raise CharlstmError(f"{where}: damaged model metadata (tags must be a list of distinct names)")
    if not isinstance(counts, dict) or (family is not None and family not in tags):
        raise CharlstmError(f"{where}: damaged model metadata (tag_counts or family_tag)")
    return {"tags": tags, "tag_counts": counts, "family_tag": family}


def write_meta(model_dir: Path, meta: ModelMeta) -> None:
    """Atomically write ``model.json``."""
    write_json(model_dir / META_FILE, meta.to_json())


@dataclass
class ModelDir:
    """A model directory opened for reading; weights are loaded on first use."""

    path: Path
    meta: ModelMeta
    _lm: Any = field(default=None, repr=False)

    @property
    def alphabet(self) -> Alphabet:
        return self.meta.alphabet

    @alphabet.setter
    def alphabet(self, alphabet: Alphabet) -> None:
        self.meta.alphabet = alphabet

    def weights(self) -> dict[str, Any]:
        """The best weights' arrays (``weights.npz``), checked against ``model.json``."""
        meta = self.meta
        return load_weights(
            self.path / WEIGHTS_FILE, len(meta.alphabet), len(meta.tags), meta.architecture.tag_input
        )

    def lm(self):
        """The numpy language model of the best weights."""
        if self._lm is None:
            from charlstm.npmodel import NumpyLSTM

            self._lm = NumpyLSTM.from_arrays(self.weights())
        return self._lm

    def training_names(self) -> set[str]:
        """Distinct names the model was trained on (empty if not recorded)."""
        path = self.path / NAMES_FILE
        if not path.is_file():
            return set()
        try:
            return set(path.read_text(encoding="utf-8").split())
        except (OSError, UnicodeDecodeError) as exc:
            raise CharlstmError(f"{path}: unreadable or damaged list of training names ({exc})") from exc

    def novel_exclusions(self) -> set[str]:
        """The names ``--novel`` leaves out: the training names, which must be recorded."""
        names = self.training_names()
        if not names:
            raise CharlstmError(
                f"{self.path / NAMES_FILE}: missing or empty, so --novel cannot tell which names are new"
            )
        return names

    def require_tags(self, what: str) -> None:
        """:class:`CharlstmError` unless the model is tagged (``what`` needs tags)."""
        if not self.meta.tags:
            raise CharlstmError(
                f"{what} needs a tagged model, and {self.path} has no tags (train one on names "
                "files with a tag per line, name<TAB>tag, or with --tag-by-file)"
            )

    def tag_ids(self, tags: Sequence[str], option: str = "tag") -> list[int]:
        """The embedding ids of ``tags``; an unknown one is an :class:`OptionError` listing the tags."""
        self.require_tags(f"--{option.replace('_', '-')}")
        known = self.meta.tags
        for tag in tags:
            if tag not in known:
                raise OptionError(option, f"unknown tag {tag!r}; the model's tags: {', '.join(known)}")
        return [known.index(tag) for tag in tags]

    def summary(self) -> dict:
        """What ``charlstm info`` prints: the path, then :meth:`ModelMeta.summary`."""
        return {"path": str(self.path), **self.meta.summary()}


def write_training_names(model_dir: Path, names: set[str]) -> None:
    """Atomically write the distinct training names, sorted, one per line."""
    write_text(model_dir / NAMES_FILE, "".join(f"{n}\n" for n in sorted(names)))


def write_history(model_dir: Path, history: list[dict]) -> None:
    """Atomically write ``history.csv``: one row per epoch, a column per metric."""
    keys = list(dict.fromkeys(k for row in history for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(model_dir / HISTORY_FILE, out.getvalue())


@dataclass
class TrainingState:
    """``state/state.json``: where a training stands, so that ``--resume`` continues exactly."""

    epoch: int = 0  # epochs completed
    step: int = 0  # batches consumed in all, across epochs
    history: list[dict] = field(default_factory=list)  # one record per epoch (history.csv)
    callbacks: dict[str, dict[str, float]] = field(default_factory=dict)  # early-stopping/plateau counters
    best: float | None = None  # best monitored NLL so far
    best_epoch: int | None = None
    learning_rate: float | None = None  # the optimizer's, when saved
    model: str | None = None  # the step-N.keras file beside it (model and optimizer)
    average: str | None = None  # the average-N.npz file beside it: the running weight average, if any
    average_epochs: list[int] | None = None  # [first, last]: the epochs that average holds

    @property
    def best_or_inf(self) -> float:
        return math.inf if self.best is None else self.best


def read_state(model_dir: Path) -> tuple[TrainingState, Path]:
    """The saved training state and the Keras file it names; a clear error if unusable."""
    path = model_dir / STATE_DIR / STATE_FILE
    if not path.is_file():
        raise CharlstmError(f"{path}: missing; nothing to resume")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = TrainingState(**{k: v for k, v in data.items() if k in TrainingState.__dataclass_fields__})
        keras_file = model_dir / STATE_DIR / data["model"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CharlstmError(f"{path}: damaged training state ({exc})") from exc
    if not keras_file.is_file():
        raise CharlstmError(f"{keras_file}: missing; cannot resume")
    return state, keras_file


def write_state(model_dir: Path, state: TrainingState, model: Any) -> None:
    """Save ``model`` (with its optimizer) as ``state/step-N.keras``, then ``state.json`` naming it.

    Written in that order, the pair is always consistent; older step files are removed
    afterwards.
    """
    state_dir = model_dir / STATE_DIR
    state_dir.mkdir(exist_ok=True)
    name = f"step-{state.step}.keras"
    save_keras(state_dir / name, model)
    state.model = name
    write_json(state_dir / STATE_FILE, asdict(state))
    for old in [*state_dir.glob("step-*.keras"), *state_dir.glob("average-*.npz")]:
        if old.name not in (name, state.average):
            old.unlink(missing_ok=True)


def write_best(model_dir: Path, best: float) -> None:
    """Record in ``state.json`` that the saved model validates at ``best`` (a model soup
    replaced it), so that a resumed training keeps it unless an epoch does better."""
    state, _ = read_state(model_dir)
    state.best = best
    write_json(model_dir / STATE_DIR / STATE_FILE, asdict(state))


def write_average(model_dir: Path, state: TrainingState, weights: list[Any], epochs: list[int]) -> None:
    """Save a running weight average as ``state/average-N.npz`` (N: its last epoch) and record
    it in ``state``; the next :func:`write_state` names it in ``state.json``."""
    (model_dir / STATE_DIR).mkdir(exist_ok=True)
    name = f"average-{epochs[1]}.npz"
    write_arrays(model_dir / STATE_DIR / name, {f"w{i}": w for i, w in enumerate(weights)})
    state.average, state.average_epochs = name, epochs


def read_average(model_dir: Path, state: TrainingState) -> list[Any] | None:
    """The running weight average ``state`` names, in the model's weight order (None if none)."""
    import numpy as np

    if state.average is None:
        return None
    path = model_dir / STATE_DIR / state.average
    try:
        with np.load(path) as arrays:
            return [arrays[f"w{i}"] for i in range(len(arrays.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise CharlstmError(f"{path}: missing or damaged ({exc}); cannot resume") from exc


def clear_state(model_dir: Path) -> None:
    """Remove a previous training's state (``train --overwrite``)."""
    state_dir = model_dir / STATE_DIR
    if state_dir.is_dir():
        for old in state_dir.iterdir():
            old.unlink()


def adopt_training(source: Path, target: Path) -> None:
    """Move the training saved in model directory ``source`` into ``target``, replacing
    target's, each file renamed into place whole (``model.json`` last); remove ``source``."""
    clear_state(target)
    (target / STATE_DIR).mkdir(exist_ok=True)
    for path in sorted((source / STATE_DIR).iterdir(), key=lambda p: p.name == STATE_FILE):
        os.replace(path, target / STATE_DIR / path.name)
    for name in (WEIGHTS_FILE, KERAS_FILE, NAMES_FILE, HISTORY_FILE, META_FILE):
        if (source / name).exists():
            os.replace(source / name, target / name)
    shutil.rmtree(source)


def lstm_layer_count(arrays: dict) -> int:
    """How many LSTM layers ``weights.npz`` arrays hold (``lstm0_kernel``, ``lstm1_kernel``, ...)."""
    return sum(1 for key in arrays if re.fullmatch(r"lstm\d+_kernel", key))


def load_weights(
    path: Path, symbols: int, n_tags: int = 0, tag_input: str = Architecture().tag_input
) -> dict[str, Any]:
    """Read ``weights.npz`` and check it is a whole LSTM over ``symbols`` symbols.

    Every array must be present, finite and of the shape its neighbours imply:
    ``lstm{i}_kernel`` [inputs, 4h], ``lstm{i}_recurrent`` [h, 4h], ``lstm{i}_bias``
    [4h] with inputs = ``symbols`` for layer 0 and the previous h after it, then
    ``out_kernel`` [h, symbols] and ``out_bias`` [symbols]. A model of ``n_tags`` tags
    also has ``tag_embedding`` [n_tags, d]; it widens layer 0's inputs by d
    (``tag_input`` "step" or "both") and/or sets each layer's initial state through
    ``lstm{i}_h0_kernel`` [d, h], ``lstm{i}_h0_bias`` [h] and the same for ``c0``
    ("state" or "both").
    """
    import numpy as np

    if not path.is_file():
        raise CharlstmError(f"{path}: missing; the model has no saved weights yet")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as exc:  # numpy and zipfile raise many types on damaged files
        raise CharlstmError(f"{path}: unreadable or damaged weights ({exc})") from exc
    layers = lstm_layer_count(arrays)
    if not layers:
        raise CharlstmError(f"{path}: damaged weights (no LSTM layer)")
    names = [f"lstm{i}_{part}" for i in range(layers) for part in ("kernel", "recurrent", "bias")]
    for key in [*names, "out_kernel", "out_bias", *(["tag_embedding"] if n_tags else [])]:
        if key not in arrays:
            raise CharlstmError(f"{path}: damaged weights ({key} is missing)")
    found = [arrays["out_kernel"].shape[-1:], arrays["out_bias"].shape[-1:]]
    if not n_tags:
        found.insert(0, arrays["lstm0_kernel"].shape[:1])
    other = next((n for shape in found for n in shape if n != symbols), None)
    if other is not None:
        raise CharlstmError(
            f"{path}: weights are for {other} symbols but the alphabet in {META_FILE} has {symbols}"
        )
    expected = _expected_shapes(path, arrays, layers, symbols, n_tags, tag_input)
    for key, shape in expected.items():
        array = arrays.get(key)
        if array is None:
            raise CharlstmError(f"{path}: damaged weights ({key} is missing)")
        if array.shape != shape:
            raise CharlstmError(f"{path}: damaged weights ({key} has shape {array.shape}, expected {shape})")
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise CharlstmError(f"{path}: damaged weights ({key} holds values that are not finite numbers)")
    return arrays


def _expected_shapes(
    path: Path, arrays: dict, layers: int, symbols: int, n_tags: int, tag_input: str
) -> dict[str, tuple[int, ...]]:
    """The shape every array must have, given the LSTM sizes the recurrent kernels show."""
    expected: dict[str, tuple[int, ...]] = {}
    tag_dim = arrays["tag_embedding"].shape[-1] if n_tags and arrays["tag_embedding"].ndim == 2 else 0
    if n_tags:
        expected["tag_embedding"] = (n_tags, tag_dim)
    width = symbols + (tag_dim if n_tags and tag_input in ("step", "both") else 0)
    for i in range(layers):
        recurrent = arrays[f"lstm{i}_recurrent"]
        if recurrent.ndim != 2 or not recurrent.shape[0]:
            raise CharlstmError(
                f"{path}: damaged weights (lstm{i}_recurrent has shape {recurrent.shape}, expected (h, 4h))"
            )
        hidden = recurrent.shape[0]
        expected[f"lstm{i}_kernel"] = (width, 4 * hidden)
        expected[f"lstm{i}_recurrent"] = (hidden, 4 * hidden)
        expected[f"lstm{i}_bias"] = (4 * hidden,)
        if n_tags and tag_input in ("state", "both"):
            for part in ("h0", "c0"):
                expected[f"lstm{i}_{part}_kernel"] = (tag_dim, hidden)
                expected[f"lstm{i}_{part}_bias"] = (hidden,)
        width = hidden
    expected["out_kernel"] = (width, symbols)
    expected["out_bias"] = (symbols,)
    return expected


def read_meta(path: Path) -> ModelMeta:
    """Read and check ``model.json`` of a model directory."""
    meta_path = path / META_FILE
    if not meta_path.exists():
        raise CharlstmError(f"{meta_path}: missing; {path} is not a charlstm model directory")
    if not meta_path.is_file():
        raise CharlstmError(f"{meta_path}: is not a file; {path} is not a charlstm model directory")
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CharlstmError(f"{meta_path}: cannot read: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CharlstmError(f"{meta_path}: damaged model metadata ({exc})") from exc
    return ModelMeta.from_json(data, meta_path)


def open_model(path: str | Path) -> ModelDir:
    """Open a model directory for reading, with a clear error for anything wrong."""
    path = Path(path)
    if not path.exists():
        raise CharlstmError(f"{path}: no such model directory")
    if not path.is_dir():
        raise CharlstmError(f"{path}: is a file, expected a model directory")
    return ModelDir(path=path, meta=read_meta(path))


def bundled_model_dir(kind: str = "names") -> Path:
    """Where the pretrained model shipped inside the package lives."""
    return BUNDLED_DIR / kind


def resolve_model_dir(option: str | Path | None) -> tuple[Path, str]:
    """Pick the model a command uses, and say why.

    ``--model`` (the word ``bundled`` names the bundled model), else ``$CHARLSTM_MODEL``,
    else ``./charlstm-model`` if it exists, else the bundled pretrained names model.
    """
    if option == BUNDLED and not Path(BUNDLED).is_dir():
        return bundled_model_dir(), "bundled"
    if option:
        return Path(option), "--model"
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env), f"${MODEL_ENV}"
    if Path(DEFAULT_MODEL_DIR).is_dir():
        return Path(DEFAULT_MODEL_DIR), "trained in this directory"
    return bundled_model_dir(), "bundled"
