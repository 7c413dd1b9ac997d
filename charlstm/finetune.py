"""Fine-tuning (``train --init-from MODEL``): the base model and the weights a run starts from.

A fine-tuned model keeps its base's alphabet and architecture (only dropout may
change) and its tags, with their ids; the new names files' tags are appended. Its
weights start as the base's, except for what the base lacks:

- a new tag's embedding row starts where the base finds the new tag's names likeliest:
  at one base tag's embedding (the base's own guess at the nearest style), or at the
  base tags' embeddings averaged by each tag's mean posterior over the names (a file
  that mixes styles, like first names of both sexes, sits between them);
- an untagged base given tagged names gets tag pathways that start silent: a zero
  block in the first LSTM's kernel for the tag embedding (and zero initial-state
  layers), so the model computes exactly the base's probabilities until it learns.

Nothing here imports TensorFlow; :mod:`charlstm.preflight` calls it before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from charlstm import checkpoint as ckpt
from charlstm.alphabet import Alphabet
from charlstm.errors import OptionError
from charlstm.evaluation import evaluate_names, score_names, tag_log_probs
from charlstm.log import Log
from charlstm.npmodel import NumpyLSTM
from charlstm.options import BUNDLED, FINETUNE_DEFAULTS, TRAIN, Architecture, TrainOptions

EMBEDDING_SCALE = 0.05  # Keras' default Embedding initialiser draws from U(-0.05, 0.05)
DROPOUTS = ("dropout", "input_dropout", "recurrent_dropout")  # the architecture a fine-tuning may change


@dataclass
class Base:
    """The model a fine-tuning starts from, read and checked."""

    label: str  # as given: a directory or "bundled"
    meta: ckpt.ModelMeta
    arrays: dict[str, np.ndarray]  # its weights.npz
    record: ckpt.BaseModel  # what model.json records of it


def open_base(init_from: str) -> Base:
    """Read the base model (``bundled`` or a model directory) and its weights."""
    path, _ = ckpt.resolve_model_dir(init_from)
    if not path.is_dir():
        raise OptionError("init_from", f"{init_from}: no such model directory (or say {BUNDLED})")
    base = ckpt.open_model(path)
    record = ckpt.BaseModel(init_from, base.meta.format_version, ckpt.file_sha256(path / ckpt.WEIGHTS_FILE))
    return Base(init_from, base.meta, base.weights(), record)


def base_alphabet_kind(meta: ckpt.ModelMeta) -> str:
    """``default`` or ``auto``: the ``--alphabet`` the base model was trained with."""
    saved = meta.training.options.get("alphabet")
    return saved if saved else ("default" if meta.alphabet == Alphabet() else "auto")


def check_options(base: Base, opts: TrainOptions, explicit: frozenset[str]) -> Architecture:
    """The fine-tuned model's architecture; :class:`OptionError` for an option that contradicts the base.

    Layer sizes, the alphabet and (for a tagged base) the tag embedding come from the
    base; the dropouts may be given anew, else fine-tuning's defaults (or the base's) are used.
    """
    arch, given = base.meta.architecture, opts.architecture
    fixed = ["hidden", "layers", *(["tag_dim", "tag_input"] if base.meta.tags else [])]
    for key in fixed:
        if key in explicit and getattr(given, key) != getattr(arch, key):
            flag = key.replace("_", "-")
            raise OptionError(
                key,
                f"--init-from {base.label}: the base model has --{flag} {getattr(arch, key)}, and a "
                f"fine-tuned model keeps its base's architecture; leave --{flag} out",
            )
    kind = base_alphabet_kind(base.meta)
    if "alphabet" in explicit and opts.alphabet != kind:
        raise OptionError(
            "alphabet",
            f"--init-from {base.label}: the base model's alphabet is {base.meta.alphabet.describe()} "
            f"(--alphabet {kind}), and a fine-tuned model keeps it; leave --alphabet out",
        )
    opts.alphabet = kind
    trained = {k: getattr(given, k) for k in DROPOUTS if k in explicit}
    trained |= {k: FINETUNE_DEFAULTS[k] for k in DROPOUTS if k in FINETUNE_DEFAULTS and k not in trained}
    untagged_base = {} if base.meta.tags else {"tag_dim": given.tag_dim, "tag_input": given.tag_input}
    return replace(arch, **trained, **untagged_base)


def apply_defaults(opts: TrainOptions, explicit: frozenset[str]) -> None:
    """Fine-tuning's defaults (:data:`FINETUNE_DEFAULTS`) for the options left at train's.

    (Its dropouts, part of the architecture, are set by :func:`check_options`.)
    """
    for name, value in FINETUNE_DEFAULTS.items():
        if name not in DROPOUTS and name not in explicit and getattr(opts, name) == getattr(TRAIN, name):
            setattr(opts, name, value)


def initial_weights(
    base: Base,
    arch: Architecture,
    tags: list[str],
    names_by_tag: dict[str, list[str]],
    seed: int,
    log: Log,
) -> dict[str, np.ndarray]:
    """The base's arrays (``weights.npz`` names) for the fine-tuned model's tags; see the module.

    They compute the base's own probabilities, a new tag's those of its starting
    embedding (:func:`base_nll` measures them); :func:`shrink` makes the start.
    """
    arrays = dict(base.arrays)
    if not tags:
        return arrays
    if not base.meta.tags:
        return _open_tag_pathways(arrays, arch, len(tags), seed)
    embedding, lm = arrays["tag_embedding"], NumpyLSTM.from_arrays(base.arrays)
    new = tags[len(base.meta.tags) :]
    rows = [_new_tag_row(base, lm, tag, names_by_tag[tag], log) for tag in new]
    if rows:
        arrays["tag_embedding"] = np.concatenate([embedding, np.stack(rows)]).astype(embedding.dtype)
    return arrays


def _new_tag_row(base: Base, lm: NumpyLSTM, tag: str, names: list[str], log: Log) -> np.ndarray:
    """The embedding a new tag starts from: of the base tags' rows and their posterior-weighted
    mean, the one under which the base finds ``names`` likeliest (see the module)."""
    embedding, alphabet = base.arrays["tag_embedding"], base.meta.alphabet
    per_name = tag_log_probs(lm, alphabet, names)  # [names, base tags]
    posterior = np.exp(per_name - per_name.max(axis=1, keepdims=True))
    weights = (posterior / posterior.sum(axis=1, keepdims=True)).mean(axis=0)
    mixed = (weights @ embedding).astype(embedding.dtype)
    with_mixed = NumpyLSTM.from_arrays({**base.arrays, "tag_embedding": np.vstack([embedding, mixed])})
    mixed_log_prob = sum(
        s.log_prob for s in score_names(with_mixed, alphabet, names, [len(embedding)] * len(names))
    )
    log_probs = per_name.sum(axis=0)
    nearest = int(np.argmax(log_probs))
    symbols = sum(len(n) + 1 for n in names)
    if mixed_log_prob > log_probs[nearest]:
        shares = ", ".join(f"{t} {w:.0%}" for t, w in zip(base.meta.tags, weights, strict=True))
        log(
            f"new tag {tag} starts from the base tags' embeddings averaged by its names' posterior "
            f"({shares}; their NLL under it: {-mixed_log_prob / symbols:.4f} nats per symbol)"
        )
        return mixed
    log(
        f"new tag {tag} starts from base tag {base.meta.tags[nearest]}'s embedding "
        f"(its names' NLL under it: {-log_probs[nearest] / symbols:.4f} nats per symbol)"
    )
    return embedding[nearest]


def shrink(arrays: dict[str, np.ndarray], factor: float) -> dict[str, np.ndarray]:
    """Every weight times ``factor`` but the tag embedding: a warm start a little closer
    to a fresh one generalises better (Ash and Adams 2020). Silent tag pathways stay zero."""
    return {key: value * factor if key != "tag_embedding" else value for key, value in arrays.items()}


def base_nll(
    arrays: dict[str, np.ndarray], alphabet: Alphabet, names: list[str], tags: list[int] | None
) -> float:
    """NLL per symbol of held-out names under :func:`initial_weights`' unshrunk arrays: the
    base unchanged, each new tag read at its starting embedding. A fine-tuning that ends
    above it has made the base worse at the file's own names."""
    return evaluate_names(NumpyLSTM.from_arrays(arrays), alphabet, names, tags).nll_per_char


def _open_tag_pathways(arrays: dict, arch: Architecture, n_tags: int, seed: int) -> dict[str, np.ndarray]:
    """Tag weights for an untagged base that leave its outputs unchanged until trained."""
    rng = np.random.default_rng(seed)
    dtype = arrays["lstm0_kernel"].dtype
    arrays["tag_embedding"] = rng.uniform(-EMBEDDING_SCALE, EMBEDDING_SCALE, (n_tags, arch.tag_dim)).astype(
        dtype
    )
    if arch.tag_input in ("step", "both"):
        kernel = arrays["lstm0_kernel"]
        arrays["lstm0_kernel"] = np.concatenate([kernel, np.zeros((arch.tag_dim, kernel.shape[1]), dtype)])
    if arch.tag_input in ("state", "both"):
        for i in range(ckpt.lstm_layer_count(arrays)):
            hidden = arrays[f"lstm{i}_recurrent"].shape[0]
            for part in ("h0", "c0"):
                arrays[f"lstm{i}_{part}_kernel"] = np.zeros((arch.tag_dim, hidden), dtype)
                arrays[f"lstm{i}_{part}_bias"] = np.zeros(hidden, dtype)
    return arrays
