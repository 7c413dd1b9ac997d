"""What train checks before TensorFlow starts: locks, existing models, multi-worker roles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import NAMES, write_random_model

from charlstm.errors import CharlstmError
from charlstm.lock import LOCK_FILE
from charlstm.options import TrainOptions
from charlstm.preflight import preflight


def test_only_the_multiworker_chief_locks_and_checks_its_model_directory(
    names_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = write_random_model(tmp_path / "shared")  # already holds a model
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    opts = TrainOptions(strategy="multiworker")

    def worker(index: int) -> None:
        task = {"type": "worker", "index": index}
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))

    worker(0)  # the chief
    with pytest.raises(CharlstmError, match="already holds a model"):
        with preflight(names_file, model, opts):
            pass
    worker(1)
    before = sorted(model.iterdir())
    with preflight(names_file, model, opts, log=lambda message: None) as run:
        assert not run.chief and run.model_dir.is_dir() and run.model_dir != model
        assert not (model / LOCK_FILE).exists()
        assert len(run.train_names) + len(run.val_names) == len(NAMES)
    assert not run.model_dir.exists() and sorted(model.iterdir()) == before
