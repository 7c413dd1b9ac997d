"""Model directories: what they hold, how they are written safely and found.

A model directory is self-contained::

    model.json          format version, alphabet, architecture, training record
    weights.npz         the best weights as plain arrays (fast inference, no TensorFlow)
    model.keras         the best model in Keras' own format
    training-names.txt  the distinct training names (for ``generate --novel``)
    history.csv         per-epoch metrics (Keras' CSVLogger)
    state/              the latest training state, for ``train --resume``

Every file is written to a temporary name in the same directory and renamed over the
old one, so a crash at any moment leaves the previous file whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charlstm.alphabet import Alphabet
from charlstm.errors import CharlstmError

FORMAT_VERSION = 1
DEFAULT_MODEL_DIR = "charlstm-model"
MODEL_ENV = "CHARLSTM_MODEL"
META_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"
KERAS_FILE = "model.keras"
NAMES_FILE = "training-names.txt"
HISTORY_FILE = "history.csv"
STATE_DIR = "state"

BUNDLED_DIR = Path(__file__).parent / "pretrained"

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it into place.

    ``suffix`` lets writers that insist on an extension (Keras wants ``.keras``) have it.
    On any failure the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; keep the usual mode
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CharlstmError(f"{path}: cannot save: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def save_keras(path: str | Path, model: Any) -> None:
    """Atomically save a Keras model in the ``.keras`` format."""
    atomic_write(path, lambda tmp: model.save(tmp), suffix=".keras")


@dataclass
class ModelDir:
    """A model directory opened for reading; weights are loaded on first use."""

    path: Path
    meta: dict
    alphabet: Alphabet
    _lm: Any = field(default=None, repr=False)

    @property
    def architecture(self) -> dict:
        return self.meta.get("architecture", {})

    @property
    def training(self) -> dict:
        return self.meta.get("training", {})

    def lm(self):
        """The numpy language model of the best weights."""
        if self._lm is None:
            from charlstm.npmodel import NumpyLSTM

            weights = self.path / WEIGHTS_FILE
            if not weights.is_file():
                raise CharlstmError(f"{weights}: missing; the model has no saved weights yet")
            try:
                lm = NumpyLSTM.load(weights)
            except Exception as exc:  # numpy raises many types on damaged files
                raise CharlstmError(f"{weights}: unreadable or damaged weights ({exc})") from exc
            if lm.vocab_size != len(self.alphabet) or lm.layers[0][0].shape[0] != len(self.alphabet):
                raise CharlstmError(
                    f"{weights}: weights are for {lm.vocab_size} symbols but the model's "
                    f"alphabet has {len(self.alphabet)}"
                )
            self._lm = lm
        return self._lm

    def training_names(self) -> set[str]:
        """Distinct names the model was trained on (empty if not recorded)."""
        path = self.path / NAMES_FILE
        if not path.is_file():
            return set()
        return set(path.read_text(encoding="utf-8").split())


def read_meta(path: Path) -> dict:
    """Read and check ``model.json`` of a model directory."""
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise CharlstmError(f"{meta_path}: missing; {path} is not a charlstm model directory")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CharlstmError(f"{meta_path}: damaged model metadata ({exc})") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("format_version"), int):
        raise CharlstmError(f"{meta_path}: damaged model metadata (no format_version)")
    if meta["format_version"] > FORMAT_VERSION:
        raise CharlstmError(
            f"{meta_path}: format version {meta['format_version']} is newer than this "
            f"charlstm understands ({FORMAT_VERSION}); upgrade charlstm"
        )
    return meta


def open_model(path: str | Path) -> ModelDir:
    """Open a model directory for reading, with a clear error for anything wrong."""
    path = Path(path)
    if not path.exists():
        raise CharlstmError(f"{path}: no such model directory")
    if not path.is_dir():
        raise CharlstmError(f"{path}: is a file, expected a model directory")
    meta = read_meta(path)
    try:
        alphabet = Alphabet.from_json(meta["alphabet"])
    except (KeyError, TypeError, CharlstmError) as exc:
        raise CharlstmError(f"{path / META_FILE}: damaged alphabet ({exc})") from exc
    return ModelDir(path=path, meta=meta, alphabet=alphabet)


def bundled_model_dir(kind: str = "names") -> Path:
    """Where the pretrained model shipped inside the package lives."""
    return BUNDLED_DIR / kind


def resolve_model_dir(option: str | Path | None) -> tuple[Path, str]:
    """Pick the model a command uses, and say why.

    ``--model``, else ``$CHARLSTM_MODEL``, else ``./charlstm-model`` if it exists,
    else the bundled pretrained names model.
    """
    if option:
        return Path(option), "--model"
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env), f"${MODEL_ENV}"
    if Path(DEFAULT_MODEL_DIR).is_dir():
        return Path(DEFAULT_MODEL_DIR), "trained in this directory"
    return bundled_model_dir(), "bundled"
