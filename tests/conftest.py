"""Shared fixtures: small names files and model directories.

``random_model_dir`` needs only numpy (fast); ``trained_model_dir`` runs a real, tiny
Keras training once per test session.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from charlstm import checkpoint as ckpt
from charlstm.alphabet import Alphabet

# Timing deadlines fail at random on 2 busy cores; the tests bound their own sizes.
settings.register_profile("charlstm", deadline=None)
settings.load_profile("charlstm")

NAMES = [
    "anna", "emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn",
    "abigail", "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria",
    "liam", "noah", "william", "james", "oliver", "benjamin", "elijah", "lucas", "mason", "logan",
    "alexander", "ethan", "jacob", "michael", "daniel", "henry", "jackson", "sebastian", "aiden",
    "matthew", "brad", "angelina", "britain", "exit", "char", "lizard", "john", "mary", "anne",
]  # fmt: skip


@pytest.fixture
def names_file(tmp_path: Path) -> Path:
    path = tmp_path / "names.txt"
    path.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return path


def write_random_model(path: Path, hidden: tuple[int, ...] = (16,), seed: int = 0) -> Path:
    """A model directory with random weights, written without TensorFlow."""
    alphabet = Alphabet()
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    width = len(alphabet)
    for i, h in enumerate(hidden):
        arrays[f"lstm{i}_kernel"] = rng.normal(0, 0.5, (width, 4 * h)).astype(np.float32)
        arrays[f"lstm{i}_recurrent"] = rng.normal(0, 0.5, (h, 4 * h)).astype(np.float32)
        arrays[f"lstm{i}_bias"] = rng.normal(0, 0.1, 4 * h).astype(np.float32)
        width = h
    arrays["out_kernel"] = rng.normal(0, 0.5, (width, len(alphabet))).astype(np.float32)
    arrays["out_bias"] = rng.normal(0, 0.1, len(alphabet)).astype(np.float32)
    arrays["out_bias"][0] = 1.0  # names end soon enough
    path.mkdir(parents=True, exist_ok=True)
    ckpt.write_arrays(path / ckpt.WEIGHTS_FILE, arrays)
    meta = {
        "format_version": ckpt.FORMAT_VERSION,
        "alphabet": alphabet.to_json(),
        "architecture": {"hidden": hidden[0], "layers": len(hidden), "dropout": 0.0,
                         "recurrent_dropout": 0.0},
        "training": {"file": "names.txt", "epochs": 0, "names": len(NAMES)},
    }  # fmt: skip
    (path / ckpt.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    (path / ckpt.NAMES_FILE).write_text("".join(f"{n}\n" for n in sorted(set(NAMES))))
    return path


@pytest.fixture
def random_model_dir(tmp_path: Path) -> Path:
    return write_random_model(tmp_path / "random-model")


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Keras model, trained for two epochs on :data:`NAMES` (a few seconds)."""
    from charlstm.options import Architecture, TrainOptions
    from charlstm.training import train

    root = tmp_path_factory.mktemp("trained")
    data = root / "names.txt"
    data.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    opts = TrainOptions(
        epochs=2, batch_size=16, architecture=Architecture(hidden=16, layers=1), samples_per_epoch=0
    )
    train(data, root / "model", opts, log=lambda message: None)
    return root / "model"


@pytest.fixture(autouse=True)
def _isolate_model_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never pick up a user's $CHARLSTM_MODEL or ./charlstm-model."""
    monkeypatch.delenv(ckpt.MODEL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with its own profile directory (runs may overlap)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is missing: `make test` installs Debian's chromium")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    command = [browser, *flags, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done
