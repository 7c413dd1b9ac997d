"""Bundling a model into the package (charlstm.bundle, ``make pretrained``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from charlstm import checkpoint as ckpt
from charlstm.bundle import SHIPPED, bundle
from charlstm.errors import CharlstmError
from charlstm.sampling import generate


def test_the_bundle_is_the_inference_files_and_samples_as_the_source(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "pretrained" / "names"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("from an older bundle")
    bundle(trained_model_dir, target)
    assert sorted(p.name for p in target.iterdir()) == sorted(SHIPPED)  # no model.keras, no state/
    for name in SHIPPED:
        assert (target / name).read_bytes() == (trained_model_dir / name).read_bytes()
    source, copy = ckpt.open_model(trained_model_dir), ckpt.open_model(target)
    assert generate(copy, 8, seed=3, novel=True) == generate(source, 8, seed=3, novel=True)


def test_without_names_leaves_the_training_names_out(trained_model_dir: Path, tmp_path: Path) -> None:
    bundle(trained_model_dir, tmp_path / "words", names=False)
    assert sorted(p.name for p in (tmp_path / "words").iterdir()) == sorted(set(SHIPPED) - {ckpt.NAMES_FILE})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / ckpt.WEIGHTS_FILE).write_bytes(b"not an npz file"), "weights"),
        (lambda d: (d / ckpt.HISTORY_FILE).unlink(), f"no {ckpt.HISTORY_FILE} to bundle"),
    ],
)
def test_a_broken_model_is_refused_and_the_old_bundle_kept(
    trained_model_dir: Path, tmp_path: Path, damage, message: str
) -> None:
    broken, target = tmp_path / "broken", tmp_path / "bundled"
    shutil.copytree(trained_model_dir, broken)
    damage(broken)
    bundle(trained_model_dir, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(CharlstmError, match=message):
        bundle(broken, target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
