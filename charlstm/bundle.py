"""Copy a trained model's inference files into the package (``make pretrained``).

The bundled model needs only what reading it takes: metadata, numpy weights, the
training names (for ``--novel``) and its history; the Keras file and resume state
stay behind to keep the package small.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from charlstm import checkpoint as ckpt
from charlstm.errors import CharlstmError

SHIPPED = (ckpt.META_FILE, ckpt.WEIGHTS_FILE, ckpt.NAMES_FILE, ckpt.HISTORY_FILE)


def bundle(source: Path, target: Path, names: bool = True) -> None:
    """Replace ``target`` with the shipped files of the model in ``source``.

    ``names=False`` leaves out the training names (the words LM's list is large and
    only ``generate --novel`` reads it).
    """
    ckpt.open_model(source).lm()  # refuse to ship a broken model
    files = [name for name in SHIPPED if names or name != ckpt.NAMES_FILE]
    missing = [name for name in files if not (source / name).is_file()]
    if missing:
        raise CharlstmError(f"{source}: no {', '.join(missing)} to bundle")
    staged = target.with_name(target.name + ".new")  # the old bundle stays until the new one is whole
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    for name in files:
        shutil.copy2(source / name, staged / name)
    if target.exists():
        shutil.rmtree(target)
    staged.rename(target)


if __name__ == "__main__":
    bundle(Path(sys.argv[1]), Path(sys.argv[2]), names="--without-names" not in sys.argv[3:])
