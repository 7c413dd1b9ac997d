"""``charlstm export --format html``: one self-contained page that samples names offline.

The page (template ``templates/generator.html``, rendered with jinja2) holds the
model's weights, base64 float32, and a small JavaScript port of
:mod:`charlstm.npmodel`'s forward pass, so it needs no network and no server: open
it from disk. Its controls pick a count, a temperature, a prefix and a seed (and a
tag, once models have tags); each name shows its log-probability under the model,
as ``charlstm score`` reports it. The URL can drive it for links and tests:
``page.html?seed=7&n=12&t=0.8&prefix=ma&score=anna`` generates that batch on load
and scores ``anna``; the results are also in the DOM (``data-log-prob``) and
``window.charlstm.score(name)`` / ``window.charlstm.generate(options)``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np

from charlstm import __version__
from charlstm import checkpoint as ckpt
from charlstm.completion import model_tags
from charlstm.options import MAX_NAME_LENGTH

TEMPLATE = "generator.html"


def weight_blob(arrays: dict[str, np.ndarray]) -> tuple[str, dict[str, dict[str, Any]]]:
    """All arrays as one base64 string of little-endian float32, and where each lies.

    The index maps each name to ``offset`` (in floats) and ``shape``.
    """
    parts, index, offset = [], {}, 0
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name], dtype="<f4")
        index[name] = {"offset": offset, "shape": list(array.shape)}
        parts.append(array.tobytes())
        offset += array.size
    return base64.b64encode(b"".join(parts)).decode("ascii"), index


def page_data(model: ckpt.ModelDir) -> dict[str, Any]:
    """Everything the page's script reads: alphabet, weights, tags, a short description."""
    meta, arrays = model.meta, model.weights()
    blob, index = weight_blob(arrays)
    training = meta.training
    firsts = [t for t in meta.tags if t != meta.family_tag] or meta.tags
    bundled = model.path.resolve().parent == ckpt.BUNDLED_DIR.resolve()
    title = f"charlstm {model.path.name}" if bundled else model.path.resolve().name
    return {
        "title": title,
        "symbols": list(model.alphabet.symbols),
        "folds_accents": model.alphabet.folds_accents,
        "layers": ckpt.lstm_layer_count(arrays),
        "arrays": index,
        "weights": blob,
        "tags": model_tags(meta),  # name -> description, in id order; empty for an untagged model
        "tag_names": meta.tags,
        "tag_weights": meta.tag_weights() if meta.tags else {},  # untagged names: the mixture
        "first_name_weights": meta.tag_weights(firsts) if meta.tags else {},  # "any style"
        "tag_step": bool(meta.tags) and meta.architecture.tag_input in ("step", "both"),
        "tag_state": bool(meta.tags) and meta.architecture.tag_input in ("state", "both"),
        "max_length": MAX_NAME_LENGTH,
        "training_names": "\n".join(sorted(model.training_names())),
        "about": {
            "training file": Path(str(training.file or "?")).name,
            "names": training.names,
            "parameters": meta.parameters,
            "epochs": training.epochs,
            "validation NLL": training.best_val_nll and round(training.best_val_nll, 4),
            "charlstm": __version__,
        },
    }


def render_page(model: ckpt.ModelDir) -> str:
    """The generator page of ``model`` as one HTML string."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("charlstm", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    data = page_data(model)
    return env.get_template(TEMPLATE).render(data=data, title=data["title"], tags=data["tags"])


def write_page(model: ckpt.ModelDir, path: str | Path) -> None:
    """Atomically write the generator page of ``model`` to the file ``path``."""
    from charlstm.errors import CharlstmError

    path = Path(path)
    if path.is_dir():
        raise CharlstmError(f"{path}: is a directory; give a file name such as names.html")
    ckpt.write_text(path, render_page(model))
