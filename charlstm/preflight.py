"""Everything ``charlstm train`` checks and reads before TensorFlow starts.

Importing TensorFlow takes seconds, so what can fail without it fails first:
:func:`preflight` locks the model directory (:mod:`charlstm.lock`), refuses one that
already holds a model unless resumed or overwritten, merges a resumed run's saved
options, and reads and checks the names files (:mod:`charlstm.data`). It hands the
names on in a :class:`TrainingRun`, so nothing is read twice, and
:func:`charlstm.training.train_run` trains it. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from charlstm import checkpoint as ckpt
from charlstm.alphabet import Alphabet
from charlstm.cluster import cluster_task
from charlstm.data import Corpus, load_names, load_names_files, split_names
from charlstm.errors import CharlstmError, OptionError
from charlstm.finetune import (
    Base,
    apply_defaults,
    base_nll,
    check_options,
    initial_weights,
    open_base,
    shrink,
)
from charlstm.lock import lock_model_dir
from charlstm.log import Log, log_to_stderr
from charlstm.options import FAMILY_TAG, MIN_VAL_NAMES, SMALL_FILE, TrainOptions, disallowed


@dataclass
class TrainingRun:
    """A training run whose input is read and checked, ready for TensorFlow."""

    names_files: list[str]
    model_dir: Path  # where this process saves (it exists): --model, or a scratch directory
    chief: bool  # False for a multiworker worker other than the chief, which saves into scratch
    opts: TrainOptions  # a resumed run's saved options merged in
    resume: bool
    overwrite: bool
    meta: ckpt.ModelMeta  # model.json to be, its training record filled in but for the results
    state: ckpt.TrainingState  # the training state to continue from (a fresh one unless resumed)
    train_names: list[str]
    val_names: list[str]
    log: Log
    train_tags: list[int] | None = None  # each name's tag id, for a tagged model
    val_tags: list[int] | None = None
    init_weights: dict | None = None  # weights.npz arrays a fine-tuning starts from (--init-from)
    retry: TrainingRun | None = None  # a fine-tuning's second start, unshrunk (training._against_base)

    @property
    def alphabet(self) -> Alphabet:
        return self.meta.alphabet


@contextlib.contextmanager
def preflight(
    names_files: str | Path | list[str | Path],
    model_dir: str | Path,
    opts: TrainOptions,
    *,
    resume: bool = False,
    overwrite: bool = False,
    explicit: frozenset[str] = frozenset(),
    log: Log = log_to_stderr,
) -> Iterator[TrainingRun]:
    """Check and read what training on ``names_files`` into ``model_dir`` needs; yield the run.

    ``model_dir``'s training lock is held for the ``with`` block. On resume, the
    options not named in ``explicit`` (those given on the command line) take their
    saved values (in ``opts`` too). With ``opts.strategy == "multiworker"`` only the
    chief (worker 0 in ``TF_CONFIG``) uses ``model_dir``; another worker neither locks
    nor checks it and saves into a temporary directory of its own, removed on exit
    (TensorFlow's advice: every worker saves, as saving may read variables collectively).
    """
    wrong = disallowed(opts)  # the CLI's types allow only these values; the Python API is checked here
    if wrong:
        raise OptionError(*wrong)
    files = [str(f) for f in names_files] if isinstance(names_files, list) else [str(names_files)]
    if opts.strategy == "multiworker":
        if resume:
            raise CharlstmError(
                "--resume cannot continue a multiworker training across machines yet; resume it on "
                "one machine (--strategy none or mirrored: its checkpoints are ordinary) or start afresh"
            )
        if cluster_task()[0] != 0:
            with tempfile.TemporaryDirectory(prefix="charlstm-worker-") as scratch:
                yield _read_run(files, Path(scratch), False, opts, False, False, explicit, log)
            return
    with lock_model_dir(model_dir):
        yield _read_run(files, Path(model_dir), True, opts, resume, overwrite, explicit, log)


def _read_run(
    names_files: list[str],
    model_dir: Path,
    chief: bool,
    opts: TrainOptions,
    resume: bool,
    overwrite: bool,
    explicit: frozenset[str],
    log: Log,
) -> TrainingRun:
    """:func:`preflight` once ``model_dir`` is locked (or is scratch)."""
    base = None
    if resume:
        meta, state = _resume_options(model_dir, opts, explicit)
    else:
        if (model_dir / ckpt.META_FILE).exists() and not overwrite:
            raise CharlstmError(
                f"{model_dir}: already holds a model; use --resume to continue it "
                "or --overwrite to replace it"
            )
        state = ckpt.TrainingState()
        meta, base = _new_meta(opts, explicit, log)
    corpus = _read_corpus(names_files, meta, opts, resume, base, log)
    tag_ids = _tag_ids(corpus, meta, opts, resume, base)
    if opts.val_file:
        train, val = list(range(len(corpus.names))), []
        val_corpus = load_names(opts.val_file, meta.alphabet, max_length=opts.max_name_length)
        val_tags = _tag_ids(val_corpus, meta, opts, True) if tag_ids is not None else None
    else:
        train, val = split_names(list(range(len(corpus.names))), opts.val_fraction, opts.seed)
        _check_held_out(len(corpus.names), len(val), opts, log)
        val_corpus = Corpus(path="", names=[corpus.names[i] for i in val])
        val_tags = None if tag_ids is None else [tag_ids[i] for i in val]
    train_names = [corpus.names[i] for i in train]
    train_tags = None if tag_ids is None else [tag_ids[i] for i in train]
    if train_tags is not None:
        meta.tag_counts = {tag: train_tags.count(i) for i, tag in enumerate(meta.tags)}
    record = meta.training
    record.file, record.names = ", ".join(names_files), len(corpus.names)
    record.train_names, record.val_names = len(train_names), len(val_corpus.names)
    record.options = opts.to_json()
    unshrunk = None if base is None else _init_weights(base, meta, corpus, opts, log, val_corpus, val_tags)
    run = TrainingRun(
        names_files=names_files,
        model_dir=model_dir,
        chief=chief,
        opts=opts,
        resume=resume,
        overwrite=overwrite,
        meta=meta,
        state=state,
        train_names=train_names,
        val_names=val_corpus.names,
        log=log,
        train_tags=train_tags,
        val_tags=val_tags,
        init_weights=None if unshrunk is None else shrink(unshrunk, opts.init_shrink),
    )
    run.retry = _unshrunk_start(run, unshrunk, explicit)
    return run


def _unshrunk_start(run: TrainingRun, arrays: dict | None, explicit: frozenset[str]) -> TrainingRun | None:
    """``run`` started from the base's weights unshrunk (``--init-shrink 1``), into
    :data:`~charlstm.checkpoint.RETRY_DIR` inside its model directory: for a fine-tuning
    whose shrink is the default, with held-out names to choose by, in one process."""
    opts = run.opts
    shrink_defaulted = "init_shrink" not in explicit and opts.init_shrink < 1
    if arrays is None or not shrink_defaulted or not run.val_names or opts.strategy == "multiworker":
        return None
    opts = replace(opts, init_shrink=1.0)
    meta = copy.deepcopy(run.meta)
    meta.training.options = opts.to_json()
    return replace(
        run, model_dir=run.model_dir / ckpt.RETRY_DIR, opts=opts, overwrite=True, meta=meta,
        state=ckpt.TrainingState(), init_weights=arrays,
    )  # fmt: skip


def _new_meta(opts: TrainOptions, explicit: frozenset[str], log: Log) -> tuple[ckpt.ModelMeta, Base | None]:
    """A new model's metadata; for a fine-tuning (``--init-from``) also its base, checked."""
    if not opts.init_from:
        if opts.soup > 1:
            raise OptionError(
                "soup",
                "--soup averages fine-tunings from one start and needs --init-from (trainings from "
                "different random starts do not average)",
            )
        return ckpt.ModelMeta(alphabet=Alphabet(), architecture=opts.architecture), None
    base = open_base(opts.init_from)
    opts.architecture = check_options(base, opts, explicit)
    apply_defaults(opts, explicit)
    log(
        f"fine-tuning {base.label} ({base.meta.parameters or 0:,} parameters, tags: "
        f"{', '.join(base.meta.tags) or 'none'}); learning rate {opts.learning_rate:g}"
    )
    meta = ckpt.ModelMeta(alphabet=base.meta.alphabet, architecture=opts.architecture, base=base.record)
    meta.tags, meta.family_tag = list(base.meta.tags), base.meta.family_tag
    return meta, base


def _read_corpus(
    names_files: list[str],
    meta: ckpt.ModelMeta,
    opts: TrainOptions,
    resume: bool,
    base: Base | None,
    log: Log,
) -> Corpus:
    """The names files, read with the model's alphabet (or a new one, ``--alphabet auto``).

    Untagged files fine-tuning a tagged base are tagged by file (see :mod:`charlstm.finetune`).
    """
    # --alphabet auto derives the symbols from the file; a resumed run or a fine-tuning keeps its own.
    alphabet = None if opts.alphabet == "auto" and not resume and base is None else meta.alphabet
    read = {"max_length": opts.max_name_length, "strict": opts.strict}
    try:
        corpus = load_names_files(names_files, alphabet, tag_by_file=opts.tag_by_file, **read)
    except CharlstmError as exc:
        if base is None:
            raise
        raise CharlstmError(f"{exc} (a fine-tuned model keeps its base's alphabet)") from exc
    if base is not None and base.meta.tags and corpus.tags.count(None) == len(corpus.names):
        opts.tag_by_file = True
        corpus = load_names_files(names_files, alphabet, tag_by_file=True, **read)
        own = ", ".join(corpus.tag_names())
        log(f"untagged names fine-tune a tagged model under tag(s) of their own: {own}")
    meta.alphabet = corpus.alphabet
    if corpus.skipped_summary():
        where = f" (the base model's alphabet: {meta.alphabet.describe()})" if base is not None else ""
        log(f"warning: {corpus.skipped_summary()}{where}")
    return corpus


def _check_held_out(names: int, held_out: int, opts: TrainOptions, log: Log) -> None:
    """Say how many names a small file holds out; refuse too few to validate on."""
    if names < SMALL_FILE:
        log(
            f"small file: {names:,} names, {held_out} held out for validation "
            f"(--val-fraction {opts.val_fraction:g}), {names - held_out:,} to train on"
        )
    if 0 < held_out < MIN_VAL_NAMES:
        raise CharlstmError(
            f"--val-fraction {opts.val_fraction:g} holds out only {held_out} of {names} names, too few "
            f"to validate on (at least {MIN_VAL_NAMES}): raise --val-fraction, give --val-file, or "
            "train without validation with --val-fraction 0 (keeps the epoch of lowest training NLL)"
        )


def _init_weights(
    base: Base,
    meta: ckpt.ModelMeta,
    corpus: Corpus,
    opts: TrainOptions,
    log: Log,
    val: Corpus,
    val_tags: list[int] | None,
) -> dict:
    """The base's weights for the fine-tuning (unshrunk), each new tag where the base finds its
    names likeliest; records (and says) how well the base unchanged predicts the held-out names."""
    new = meta.tags[len(base.meta.tags) :]
    by_tag = {tag: corpus.names_with_tag(tag) for tag in new}
    arrays = initial_weights(base, meta.architecture, meta.tags, by_tag, opts.seed, log)
    if val.names:
        meta.training.base_val_nll = base_nll(arrays, meta.alphabet, val.names, val_tags)
        log(
            f"the base model unchanged: validation NLL {meta.training.base_val_nll:.4f} nats per symbol "
            "(a fine-tuning should end below it)"
        )
    return arrays


def _tag_ids(
    corpus: Corpus, meta: ckpt.ModelMeta, opts: TrainOptions, resume: bool, base: Base | None = None
) -> list[int] | None:
    """Each name's tag id (None for untagged names files); sets a new model's tags.

    A tagged model needs a tag on every line; a resumed one knows its tags already; a
    fine-tuned one keeps its base's and appends the new ones.
    """
    untagged = corpus.tags.count(None)
    if untagged == len(corpus.names) and not meta.tags:
        return None
    if untagged:
        raise CharlstmError(
            f"{corpus.path}: {untagged} line(s) have no tag while others do (or the model is "
            "tagged); give every line a tag (name<TAB>tag) or use --tag-by-file"
        )
    if not resume:
        kept = meta.tags if base is not None else []
        meta.tags = kept + [tag for tag in corpus.tag_names() if tag not in kept]
        family = opts.family_tag or meta.family_tag or (FAMILY_TAG if FAMILY_TAG in meta.tags else None)
        if family is not None and family not in meta.tags:
            raise CharlstmError(f"--family-tag {family}: no such tag; the tags: {', '.join(meta.tags)}")
        meta.family_tag = family
    unknown = sorted(set(corpus.tag_names()) - set(meta.tags))
    if unknown:
        raise CharlstmError(
            f"{corpus.path}: tag(s) {', '.join(unknown)} not among the model's ({', '.join(meta.tags)})"
        )
    index = {tag: i for i, tag in enumerate(meta.tags)}
    return [index[tag] for tag in corpus.tags]


def _resume_options(
    model_dir: Path, opts: TrainOptions, explicit: frozenset[str]
) -> tuple[ckpt.ModelMeta, ckpt.TrainingState]:
    """Read the saved run and merge its options with those given again.

    Returns the saved metadata and state. Architecture options given again must match.
    """
    opened = ckpt.open_model(model_dir)
    opened.lm()  # refuses weights sized for another alphabet than model.json's
    state, _ = ckpt.read_state(model_dir)
    saved_arch = opened.meta.architecture
    clash = {
        k: (getattr(saved_arch, k), getattr(opts.architecture, k))
        for k in saved_arch.to_json()
        if k in explicit and getattr(saved_arch, k) != getattr(opts.architecture, k)
    }
    if clash:
        detail = ", ".join(f"--{k.replace('_', '-')} {new} (saved: {old})" for k, (old, new) in clash.items())
        raise CharlstmError(f"{model_dir}: cannot resume with another architecture: {detail}")
    opts.architecture = saved_arch
    saved = opened.meta.training.options
    for name in TrainOptions.inherited():
        if name not in explicit and name in saved:
            setattr(opts, name, saved[name])
    return opened.meta, state
