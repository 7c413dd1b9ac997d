"""The one place TensorFlow code gets Keras and TensorFlow from, imported quietly.

Only training (and exporting) imports this module; reading a model never does.
Importing it imports TensorFlow, which takes seconds.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType


def _import_quietly() -> tuple[ModuleType, ModuleType]:
    """Import Keras on the TensorFlow backend without TensorFlow's start-up noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"], sys.modules["tensorflow"]
    # TensorFlow's C++ runtime prints CUDA-probe lines straight to file descriptor 2
    # before TF_CPP_MIN_LOG_LEVEL applies; no setting silences them, so stderr is
    # pointed at /dev/null for the import alone. Python errors still propagate.
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        import keras
        import tensorflow

        tensorflow.config.list_physical_devices("GPU")  # probes CUDA, which also prints
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras, tensorflow


keras, tf = _import_quietly()
