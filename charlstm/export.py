"""``charlstm export``: a model for plain TensorFlow, plain Keras, or a web page.

* ``savedmodel``: a TensorFlow SavedModel directory whose ``serving_default``
  signature maps ``ids`` (int32 [batch, time], symbol ids, 0 = the end marker that
  starts and ends a name) to ``log_probs`` (float32 [batch, time, vocab]: at each
  position, the log-probability of every next symbol). ``charlstm.json`` beside
  ``saved_model.pb`` records the alphabet (id order) and the signature. A later
  model with tags will add inputs to this signature, not change the ones above.
* ``keras``: the inference model as one ``.keras`` file (:mod:`charlstm.portable`);
  useful for the bundled model, which ships without ``model.keras``.
* ``html``: one self-contained generator page (:mod:`charlstm.webpage`).

Every format is rebuilt from the model's ``weights.npz``, so any model directory,
the bundled ones included, exports the best weights that numpy inference uses.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from charlstm import checkpoint as ckpt
from charlstm.errors import CharlstmError

if TYPE_CHECKING:
    import keras

FORMATS = ("savedmodel", "keras", "html")
SIGNATURE = {
    "name": "serving_default",
    "inputs": {"ids": "int32 [batch, time]: symbol ids, 0 = end marker (starts and ends a name)"},
    "outputs": {"log_probs": "float32 [batch, time, vocab]: log-probability of each next symbol"},
}
TAGS_INPUT = {"tags": "int32 [batch]: each row's tag id (tagged models only; ids as in charlstm.json)"}


def guess_format(output: str | Path) -> str:
    """The format an output path implies: ``.html``/``.htm`` page, ``.keras`` file, else SavedModel."""
    suffix = Path(output).suffix.lower()
    return {".html": "html", ".htm": "html", ".keras": "keras"}.get(suffix, "savedmodel")


def export_model(model: ckpt.ModelDir, output: str | Path, fmt: str | None = None) -> str:
    """Write ``model`` to ``output`` in format ``fmt`` (default: from the suffix); return a summary."""
    output = Path(output)
    fmt = fmt or guess_format(output)
    if fmt not in FORMATS:
        raise CharlstmError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "html":
        from charlstm.webpage import write_page

        write_page(model, output)
        return f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB, self-contained generator page)"
    if output.exists() and (fmt == "savedmodel" or output.is_dir()):
        raise CharlstmError(
            f"{output}: already exists; give a new {'directory' if fmt == 'savedmodel' else 'file'}"
        )
    from charlstm.portable import open_keras

    keras_model = open_keras(model)
    if fmt == "keras":
        ckpt.save_keras(output, keras_model)
        return f"wrote {output} (Keras model: ids [batch, time] -> logits [batch, time, vocab])"
    write_savedmodel(keras_model, model, output)
    return f"wrote {output} (SavedModel, signature serving_default: ids -> log_probs)"


def write_savedmodel(keras_model: keras.Model, model: ckpt.ModelDir, output: Path) -> None:
    """Export ``keras_model`` with the :data:`SIGNATURE` to a new directory ``output``.

    It is written beside ``output`` under a temporary name and renamed into place.
    """
    import tensorflow as tf

    from charlstm.model import keras

    archive = keras.export.ExportArchive()
    archive.track(keras_model)

    ids_spec = tf.TensorSpec([None, None], tf.int32, name="ids")
    signature = dict(SIGNATURE)
    if model.meta.tags:  # the model reads each row's tag at every step

        def serve(ids, tags):
            steps = tf.repeat(tags[:, None], tf.shape(ids)[1], axis=1)
            return {"log_probs": tf.nn.log_softmax(keras_model([ids, steps], training=False), axis=-1)}

        specs = [ids_spec, tf.TensorSpec([None], tf.int32, name="tags")]
        signature["inputs"] = {**SIGNATURE["inputs"], **TAGS_INPUT}
    else:

        def serve(ids):
            return {"log_probs": tf.nn.log_softmax(keras_model(ids, training=False), axis=-1)}

        specs = [ids_spec]
    archive.add_endpoint(SIGNATURE["name"], serve, input_signature=specs)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        archive.write_out(str(tmp), verbose=False)
        info = {
            "alphabet": model.alphabet.to_json(),
            "signature": signature,
            "architecture": model.meta.architecture.to_json(),
            "tags": model.meta.tags,
        }
        (tmp / "charlstm.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        tmp.rename(output)
    except OSError as exc:
        raise CharlstmError(f"{output}: cannot save: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
