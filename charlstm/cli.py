"""The ``charlstm`` command line: parse options, call the library, print results.

Nothing here imports TensorFlow or numpy at module level: ``charlstm --help`` and
the commands that only read a model stay fast.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import click

from charlstm import __version__
from charlstm.api import Model, display_name, load
from charlstm.completion import complete_tags
from charlstm.errors import CharlstmError, OptionError
from charlstm.options import (
    BLEND,
    EXPLAIN,
    FAMILY_TAG,
    FINETUNE_DEFAULTS,
    GENERATE,
    PRIORS,
    TRAIN,
    BlendOptions,
    ExplainOptions,
    GenerateOptions,
    TrainOptions,
    allowed,
)

STARTED = time.monotonic()


class Command(click.Command):
    """Reports an :class:`OptionError` as Click reports its own checks: a usage error naming the option."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OptionError as exc:
            flag = f"--{exc.option.replace('_', '-')}"
            param = next((p for p in self.params if exc.option == p.name or flag in p.opts), None)
            hint = param.human_readable_name if isinstance(param, click.Argument) else None  # NAMES
            raise click.BadParameter(str(exc), ctx=ctx, param=param, param_hint=hint) from None


class Group(click.Group):
    """Turns the library's errors into one-line messages with exit status 1."""

    command_class = Command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CharlstmError as exc:
            raise click.ClickException(str(exc)) from None


class FiniteFloatRange(click.FloatRange):
    """A float range that also refuses ``nan`` and ``inf``."""

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _type(name: str, options: type = TrainOptions) -> click.ParamType:
    """Click's type for option ``name`` of ``options``, made from what it allows (:mod:`charlstm.options`)."""
    rule, integer = allowed(name, options)
    if rule.choices:
        return click.Choice(rule.choices)
    kind = click.IntRange if integer else FiniteFloatRange
    return kind(rule.low, rule.high, min_open=rule.low_open, max_open=rule.high_open)


SEED_TYPE = _type("seed")


def _open_model(option: str | None) -> Model:
    """Open the model a command uses (:func:`charlstm.load`) and say which on stderr.

    Its methods run numpy inference on one BLAS thread (:mod:`charlstm.threads`).
    """
    from charlstm.checkpoint import resolve_model_dir

    path, why = resolve_model_dir(option)
    model = load(path)
    click.echo(f"using model {path} ({why})", err=True)
    return model


model_option = click.option(
    "--model",
    "-m",
    "model_dir",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Model directory. Default: $CHARLSTM_MODEL, else ./charlstm-model if it "
    "exists, else the bundled pretrained names model.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
tag_option = click.option(
    "--tag",
    metavar="TAG",
    shell_complete=complete_tags,
    help="A tagged model's tag to read names under. Without it, names of a tagged model "
    "count under every tag, weighted by the tags' training frequencies.",
)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="charlstm")
def cli() -> None:
    """Character-level LSTM name generator and portmanteau blender.

    \b
    Examples:
      charlstm generate --n 20           # 20 new names from the bundled model
      charlstm blend Brad Angelina       # Brangelina, and other blends
      charlstm train names.txt           # train your own model on a names file
      charlstm generate --n 20           # ... then sample from it

    Run `charlstm COMMAND --help` for each command's options. Shell completion
    (bash, zsh, fish): eval "$(_CHARLSTM_COMPLETE=bash_source charlstm)" in
    ~/.bashrc (zsh_source, fish_source for the others; see README).
    """


@cli.command()
@click.argument(
    "names_files", metavar="FILE...", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False)
)
@model_option
@click.option(
    "--epochs", type=_type("epochs"), default=TRAIN.epochs, show_default=True, help="Maximum epochs."
)
@click.option(
    "--hidden",
    type=_type("hidden"),
    default=TRAIN.architecture.hidden,
    show_default=True,
    help="LSTM units per layer.",
)
@click.option(
    "--layers",
    type=_type("layers"),
    default=TRAIN.architecture.layers,
    show_default=True,
    help="Stacked LSTM layers.",
)
@click.option(
    "--dropout",
    type=_type("dropout"),
    default=TRAIN.architecture.dropout,
    show_default=True,
    help="Dropout between LSTM layers and before the output layer.",
)
@click.option(
    "--input-dropout",
    type=_type("input_dropout"),
    default=TRAIN.architecture.input_dropout,
    show_default=True,
    help="While training, hide each letter from a whole name with this probability, so the "
    "model learns to spell from context rather than by heart.",
)
@click.option(
    "--recurrent-dropout",
    type=_type("recurrent_dropout"),
    default=TRAIN.architecture.recurrent_dropout,
    show_default=True,
    help="Dropout on the recurrent state. Any value above 0 leaves the fast cuDNN "
    "GPU kernel (other settings keep it).",
)
@click.option(
    "--tag-dim",
    type=_type("tag_dim"),
    default=TRAIN.architecture.tag_dim,
    show_default=True,
    help="Size of each tag's learned embedding (tagged names files only).",
)
@click.option(
    "--tag-input",
    type=_type("tag_input"),
    default=TRAIN.architecture.tag_input,
    show_default=True,
    help="Where a name's tag enters the LSTM: beside every symbol (step), as the initial "
    "state (state), or both (tagged names files only).",
)
@click.option(
    "--alphabet",
    type=_type("alphabet"),
    default=TRAIN.alphabet,
    show_default=True,
    help="default: a-z, case and accents folded (Zoë -> zoe). auto: every symbol in FILE "
    "(other scripts, accents, hyphens, spaces), case folded only; stored with the model.",
)
@click.option(
    "--strategy",
    type=_type("strategy"),
    default=TRAIN.strategy,
    show_default=True,
    help="tf.distribute strategy. auto: mirrored if more than one GPU, else one device "
    "(a GPU if present). mirrored: all local GPUs, each batch split among them. "
    "multiworker: several machines, each running the same command with its own TF_CONFIG "
    "(cluster and task index; worker 0, the chief, writes --model); see README.",
)
@click.option("--batch-size", type=_type("batch_size"), default=TRAIN.batch_size, show_default=True)
@click.option("--learning-rate", type=_type("learning_rate"), default=TRAIN.learning_rate, show_default=True)
@click.option(
    "--weight-decay",
    type=_type("weight_decay"),
    default=TRAIN.weight_decay,
    show_default=True,
    help="AdamW's decoupled weight decay: each step shrinks the weight matrices by "
    "learning rate x this (biases are left alone); 0 is plain Adam.",
)
@click.option(
    "--val-fraction",
    type=_type("val_fraction"),
    default=TRAIN.val_fraction,
    show_default=True,
    help="Fraction of names held out (seeded) to measure validation NLL.",
)
@click.option(
    "--val-file",
    type=click.Path(dir_okay=False, exists=True),
    help="Validate on this names file instead of a held-out fraction.",
)
@click.option(
    "--patience",
    type=_type("patience"),
    default=TRAIN.patience,
    show_default=True,
    help="Stop after this many epochs without a better validation NLL (not with the "
    "cosine schedule, which runs to the deadline).",
)
@click.option(
    "--time-limit",
    type=_type("time_limit"),
    metavar="SECONDS",
    help="Stop gracefully when this much wall-clock time is spent, keeping the best model.",
)
@click.option(
    "--max-name-length",
    type=_type("max_name_length"),
    default=TRAIN.max_name_length,
    show_default=True,
    help="Skip names longer than this.",
)
@click.option("--strict", is_flag=True, help="Fail on lines that cannot be used instead of skipping them.")
@click.option(
    "--tag-by-file",
    is_flag=True,
    help="Tag every name with its file's name: female.txt male.txt -> tags female, male.",
)
@click.option(
    "--balance-tags",
    is_flag=True,
    help="Show the names of rarer tags more often in every epoch (a tag 100 times rarer, "
    "10 times as often), so a small style is learned as well as a large one.",
)
@click.option(
    "--family-tag",
    metavar="TAG",
    help=f"The tag of family names, for generate --full. Default: {FAMILY_TAG}, if there is such a tag.",
)
@click.option(
    "--init-from",
    metavar="MODEL",
    help="Fine-tune: start from MODEL's weights (a model directory, or 'bundled' for the "
    "pretrained names model). Its alphabet, layer sizes and tags are kept (new tags are added; "
    "untagged files get a tag named after the file when MODEL is tagged), though its tags drift "
    "towards the new file's style (sample MODEL itself for its own styles); the optimizer starts "
    "afresh. Defaults when fine-tuning: "
    + ", ".join(f"--{name.replace('_', '-')} {value:g}" for name, value in FINETUNE_DEFAULTS.items())
    + ".",
)
@click.option(
    "--init-shrink",
    type=_type("init_shrink"),
    default=TRAIN.init_shrink,
    help="With --init-from: start from the base's weights times this factor (a warm start nearer "
    "a fresh one generalises better). Default when fine-tuning: "
    f"{FINETUNE_DEFAULTS['init_shrink']:g}; 1 suits a file close to the base's style. Left at "
    "the default, a fine-tuning that ends above the base unchanged on the held-out names trains "
    "once more from the unshrunk base and keeps the better of the two by validation NLL.",
)
@click.option(
    "--soup",
    type=_type("soup"),
    default=TRAIN.soup,
    metavar="N",
    help="With --init-from and validation names: fine-tune N times from the same start (seeds "
    "--seed, --seed+1, ...), sharing the --time-limit, and average their weights into one model "
    "(a model soup), kept when it validates better than the first; without --time-limit it takes "
    f"N times as long. Default when fine-tuning: {FINETUNE_DEFAULTS['soup']:g}; 1 trains once.",
)
@click.option(
    "--seed",
    type=SEED_TYPE,
    default=TRAIN.seed,
    show_default=True,
    help="Random seed (split, init, shuffling).",
)
@click.option(
    "--lr-schedule",
    type=_type("lr_schedule"),
    default=TRAIN.lr_schedule,
    show_default=True,
    help="plateau: halve the learning rate when validation stalls; cosine: anneal it "
    "to 1% (25% when averaging weights, --average-from) by the --time-limit deadline or "
    "the last of the --epochs, whichever comes first (needs --time-limit); auto: cosine with "
    "--time-limit, else plateau.",
)
@click.option(
    "--average-from",
    type=_type("average_from"),
    default=TRAIN.average_from,
    show_default=True,
    metavar="SHARE",
    help="With the cosine schedule and validation names: from this share of the schedule on, "
    "average the weights of every epoch and validate the average; it is kept when it beats "
    "every single epoch (stochastic weight averaging), and the cosine then ends at 25% of "
    "the starting learning rate instead of 1%. 1 turns it off.",
)
@click.option("--tensorboard", metavar="DIR", help="Write TensorBoard logs to DIR.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the training saved in --model; options not given again keep their saved values.",
)
@click.option("--overwrite", is_flag=True, help="Replace a model already in --model.")
@click.pass_context
def train(
    ctx: click.Context,
    names_files: tuple[str, ...],
    model_dir: str | None,
    resume: bool,
    overwrite: bool,
    **options,
) -> None:
    """Train a character LSTM on FILE (or several), one name per line.

    A line may carry a tag after a tab, name<TAB>tag (female, male, surname, elves:
    letters, digits, - and _); a model trained on tagged names learns every tag's
    style at once and generates, scores and classifies by tag. --tag-by-file tags
    each file's names with the file's name instead.

    FILE is UTF-8 text (a BOM is fine) with LF or CRLF line endings. Lines are
    case-folded and accents removed (Zoë -> zoe); blank lines are skipped, and lines
    with other symbols (digits, hyphens, spaces) or longer than --max-name-length
    are skipped with a warning that counts them and gives line numbers (--strict
    makes them an error). Binary, UTF-16 or other non-UTF-8 files are refused. The
    model is written to --model (default ./charlstm-model), keeping the best epoch
    by validation NLL. One training at a time may use a model directory; generate,
    blend and evaluate can read it meanwhile.

    Reported losses are negative log-likelihood per predicted symbol (letters and
    end of name, padding excluded) in nats, with bits beside. Each epoch line also
    gives the share of new names (not in FILE) among names sampled from the model as
    it stands: a falling share means it has begun to copy its training names.

    \b
    Examples:
      charlstm train names.txt
      charlstm train names.txt --model pets --epochs 50 --hidden 128 --layers 1
      charlstm train names.txt --model pets --resume
      charlstm train female.txt male.txt surname.txt --tag-by-file --model styles
      charlstm train elves.txt --init-from bundled --model elves   # fine-tune

    Training state is saved every epoch and at least every 60 s. Ctrl-C (SIGINT) or
    SIGTERM stops after the current step, saves, prints how to resume and exits
    with status 130 (SIGINT) or 143 (SIGTERM).
    """
    from pathlib import Path

    from charlstm.checkpoint import DEFAULT_MODEL_DIR, META_FILE
    from charlstm.options import Architecture, TrainOptions
    from charlstm.preflight import preflight

    model_dir = model_dir or DEFAULT_MODEL_DIR
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    if resume and not (Path(model_dir) / META_FILE).is_file():
        raise click.BadParameter(f"{model_dir} holds no model to resume", param_hint="'--resume'")
    arch = Architecture(**{name: options.pop(name) for name in Architecture.__dataclass_fields__})
    opts = TrainOptions(architecture=arch, **options)
    typed = click.core.ParameterSource.COMMANDLINE
    explicit = frozenset(name for name in ctx.params if ctx.get_parameter_source(name) == typed)
    # Before importing TensorFlow, which takes seconds: bad names files, a model directory
    # another training holds or that already has a model, clashing options fail at once.
    checked = preflight(
        list(names_files), model_dir, opts, resume=resume, overwrite=overwrite, explicit=explicit
    )
    with checked as run:
        from charlstm.training import train_run

        record = train_run(run, started=STARTED)
    global _SKIP_TEARDOWN
    _SKIP_TEARDOWN = True  # everything is saved, atomically and fsynced
    if record.get("signal"):
        ctx.exit(128 + record["signal"])  # 130 for SIGINT, 143 for SIGTERM


@cli.command()
@model_option
@click.option(
    "--n",
    "-n",
    "count",
    type=_type("count", GenerateOptions),
    default=GENERATE.count,
    show_default=True,
    help="How many names to print.",
)
@click.option(
    "--temperature",
    "-t",
    type=_type("temperature", GenerateOptions),
    default=GENERATE.temperature,
    show_default=True,
    help="Below 1: safer, commoner names; above 1: wilder ones.",
)
@click.option(
    "--top-k",
    type=_type("top_k", GenerateOptions),
    help="Sample only among the K likeliest next symbols (letters and end of name).",
)
@click.option(
    "--prefix",
    default="",
    help="Names start with these letters (folded like the model's training names).",
)
@click.option(
    "--suffix", default="", help="Names end with these letters, e.g. --suffix ella (Isabella, Marcella)."
)
@click.option(
    "--contains", default="", help="Names contain these letters, e.g. --contains or (Lorna, Gregory)."
)
@click.option(
    "--exclude-letters",
    default="",
    metavar="LETTERS",
    help="Names never use any of these letters, e.g. --exclude-letters xqz.",
)
@click.option(
    "--min-length",
    type=_type("min_length", GenerateOptions),
    default=GENERATE.min_length,
    show_default=True,
    help="Fewest letters per name, prefix included.",
)
@click.option(
    "--max-length",
    type=_type("max_length", GenerateOptions),
    default=GENERATE.max_length,
    show_default=True,
    help="Most letters per name; longer samples are discarded.",
)
@click.option(
    "--unique/--allow-duplicates", default=GENERATE.unique, show_default=True, help="Print each name once."
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    shell_complete=complete_tags,
    help="A tagged model's names in this style (repeat to mix tags by their training "
    "frequencies). Default: every tag but the family-name tag.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Full names, 'First Last': first names from the first-name tags (or --tag), "
    "family names from the model's family-name tag. Constraints apply to the first name.",
)
@click.option(
    "--novel", is_flag=True, help="Skip the names the model was trained on (its training-names.txt)."
)
@click.option("--seed", type=SEED_TYPE, help="Random seed: the same seed gives the same names.")
@json_option
def generate(
    model_dir: str | None,
    count: int,
    temperature: float,
    top_k: int | None,
    prefix: str,
    suffix: str,
    contains: str,
    exclude_letters: str,
    min_length: int,
    max_length: int,
    unique: bool,
    tags: tuple[str, ...],
    full: bool,
    novel: bool,
    seed: int | None,
    as_json: bool,
) -> None:
    """Print exactly N names sampled from a model, one per line.

    Every name meets all of --prefix, --suffix, --contains, --exclude-letters and the
    lengths; if the model cannot produce N such (distinct) names, it fails within
    seconds rather than print fewer. With --json each line is an object with the name
    and its log-probability in nats under the model (at temperature 1), and its tag
    for a tagged model. The bundled model is tagged (female, male, surname): by
    default it draws first names, female and male by their frequencies.

    \b
    Examples:
      charlstm generate --n 20
      charlstm generate --n 5 --prefix ma --temperature 0.7 --seed 1
      charlstm generate --n 10 --suffix ella --contains r --exclude-letters z
      charlstm generate --tag female --prefix el --n 10
      charlstm generate --full --n 5
      charlstm generate --model pets --n 100 --novel --json
    """
    samples = _open_model(model_dir).sample(
        count,
        tags=tags,
        full=full,
        novel=novel,
        seed=seed,
        temperature=temperature,
        top_k=top_k,
        prefix=prefix,
        suffix=suffix,
        contains=contains,
        exclude_letters=exclude_letters,
        min_length=min_length,
        max_length=max_length,
        unique=unique,
    )
    shown = [display_name(s.name, full) for s in samples]
    if as_json:
        tagged = [{"tag": s.tag} if s.tag is not None else {} for s in samples]
        shown = [
            json.dumps({"name": name, "log_prob": round(s.log_prob, 4), **tag})
            for name, s, tag in zip(shown, samples, tagged, strict=True)
        ]
    lines = shown
    click.echo("\n".join(lines))


@cli.command()
@click.argument("names", nargs=-1, required=True)
@model_option
@tag_option
@json_option
def score(names: tuple[str, ...], model_dir: str | None, tag: str | None, as_json: bool) -> None:
    """Print how likely a model finds each NAME.

    One line per name: the name, its NLL per predicted symbol (letters and end of
    name) in nats and in bits (lower is likelier), and its total log-probability
    in nats, separated by tabs.

    \b
    Examples:
      charlstm score Anna Xqzz
      charlstm score Smith --tag surname
    """
    for raw, s in zip(names, _open_model(model_dir).score(names, tag), strict=True):
        if as_json:
            nll = {"nll_per_char": s.nll_per_char, "bits_per_char": s.bits_per_char}
            click.echo(json.dumps({"name": raw, **nll, "log_prob": s.log_prob}))
        else:
            click.echo(f"{raw}\t{s.nll_per_char:.4f}\t{s.bits_per_char:.4f}\t{s.log_prob:.4f}")


@cli.command()
@click.argument("names", nargs=-1, required=True)
@model_option
@click.option(
    "--prior",
    type=click.Choice(PRIORS),
    default=PRIORS[0],
    show_default=True,
    help="uniform: every tag equally likely before the name is read; frequency: as often as "
    "in training (a model with 20 times more surnames then calls most names surnames).",
)
@json_option
def classify(names: tuple[str, ...], model_dir: str | None, prior: str, as_json: bool) -> None:
    """Print, for each NAME, how likely each of a tagged model's tags is, best first.

    P(tag | name) by Bayes' rule over the model's likelihood of the name under each
    tag: the same network that generates names in a style reads a name and says
    which style it sounds like. Text output: the name, then tag and probability
    pairs, tab-separated; --json: one object per name.

    \b
    Examples:
      charlstm classify Angelina Bob Smith
      charlstm classify Jean --prior frequency --json
    """
    for result in _open_model(model_dir).classify(names, prior):
        if as_json:
            click.echo(json.dumps(result.to_json()))
        else:
            shown = (f"{tag} {p:.3f}" for tag, p in result.probabilities.items())
            click.echo("\t".join([result.name, *shown]))


@cli.command()
@click.argument("word1", required=False)
@click.argument("word2", required=False)
@model_option
@click.option(
    "--words-model",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Words LM directory. Default: the bundled words model.",
)
@click.option(
    "--top",
    "-k",
    type=_type("top", BlendOptions),
    default=BLEND.top,
    show_default=True,
    help="How many candidates to print.",
)
@click.option(
    "--pairs",
    "pairs_file",
    metavar="FILE",
    type=click.File("r", encoding="utf-8-sig"),
    help="Blend every line of FILE ('-': stdin): two words separated by a tab or spaces "
    "(extra columns ignored). Prints one line per pair, in order: the two words and "
    "the --top blends, tab-separated (with --json, one object per line).",
)
@click.option(
    "--eval",
    "eval_file",
    metavar="FILE.tsv",
    type=click.File("r", encoding="utf-8-sig"),
    help="Measure on FILE.tsv lines word1, word2, gold blend: exact@1, exact@3, exact@10 "
    "and average Levenshtein distance of the top answer, over all rows.",
)
@click.option("--both-orders", is_flag=True, help="Also try a prefix of WORD2 joined to a suffix of WORD1.")
@click.option(
    "--explain",
    "explain_blend",
    is_flag=True,
    help="With WORD1 WORD2: show which letters come from which word, as Bra(d) + Angelina -> "
    "Br[a]ngelina ((dropped) letters, [shared] overlap), and the three features that weigh "
    "most in each score (weight x standardised value).",
)
@json_option
def blend(
    word1: str | None,
    word2: str | None,
    model_dir: str | None,
    words_model: str | None,
    top: int,
    pairs_file,
    eval_file,
    both_orders: bool,
    as_json: bool,
    explain_blend: bool,
) -> None:
    """Blend two words into portmanteaus, best first, with their scores.

    Candidates join a prefix of WORD1 to a suffix of WORD2. A fitted reranker scores
    them by how each is put together (letters shared at the join, how much of each
    word is kept, which letters meet at each cut) and by the bundled words LM; the
    score is the candidate's probability among all candidates. (The shipped weights
    leave the names LM, --model, out, so rankings do not depend on it.) Input is
    case-insensitive and accents are folded (Beyoncé -> beyonce); the output's
    capitalisation follows the input.

    \b
    Examples:
      charlstm blend Brad Angelina
      charlstm blend Britain Exit --top 3 --json
      charlstm blend Brad Angelina --top 3 --explain
      printf 'smoke fog\\nchar lizard\\n' | charlstm blend --pairs - --top 1
      charlstm blend --eval blends-dev.tsv
    """
    from charlstm.blending import Blender, read_pairs
    from charlstm.checkpoint import bundled_model_dir, open_model
    from charlstm.threads import single_blas_thread

    sources = sum(x is not None for x in (pairs_file, eval_file)) + (word1 is not None)
    if sources != 1:
        raise click.UsageError("give WORD1 WORD2, or --pairs FILE, or --eval FILE.tsv (exactly one)")
    if word1 is not None and word2 is None:
        raise click.UsageError("missing WORD2: blend needs two words")
    if explain_blend and word1 is None:
        raise click.UsageError("--explain works with WORD1 WORD2, not with --pairs or --eval")
    words_dir = words_model or bundled_model_dir("words")
    model = _open_model(model_dir).directory
    click.echo(f"using words model {words_dir} ({'--words-model' if words_model else 'bundled'})", err=True)
    blender = Blender.open(model, open_model(words_dir))
    click.get_current_context().with_resource(single_blas_thread())  # numpy inference from here on

    def read(fh, columns: int) -> list[tuple[str, ...]]:
        source = getattr(fh, "name", "<stdin>")  # Click's test runner gives stdin no name
        return read_pairs(fh, source, model.alphabet, columns=columns)

    if explain_blend:  # issue 15
        from charlstm.blend_explain import explained_output

        click.echo(explained_output(blender, word1, word2, top=top, both_orders=both_orders, as_json=as_json))
        return
    if eval_file is not None:
        result = blender.evaluate(read(eval_file, 3), both_orders=both_orders)
        if as_json:
            click.echo(json.dumps(result.to_json()))
        else:
            shown = "  ".join(f"exact@{k} {100 * v:.1f}%" for k, v in result.exact.items())
            click.echo(f"{shown}  avg Levenshtein {result.levenshtein:.3f}  ({result.rows} rows)")
        return
    pairs = read(pairs_file, 2) if pairs_file is not None else [(word1, word2)]
    for (w1, w2), results in zip(pairs, blender.rank(pairs, top=top, both_orders=both_orders), strict=True):
        if as_json:
            blends = [{"blend": b.blend, "score": round(b.score, 6)} for b in results]
            click.echo(json.dumps({"word1": w1, "word2": w2, "blends": blends}))
        elif pairs_file is not None:
            click.echo("\t".join([w1, w2, *(b.blend for b in results)]))
        else:
            click.echo("\n".join(f"{b.blend}\t{b.score:.6f}" for b in results))


@cli.command()
@click.argument("names_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@model_option
@tag_option
@json_option
def evaluate(names_file: str, model_dir: str | None, tag: str | None, as_json: bool) -> None:
    """Measure a model's NLL on a names file.

    Every line counts (duplicates too): total NLL of all predicted symbols (letters
    and end of name) divided by their count, in nats and bits per symbol. Under a
    tagged model a line name<TAB>tag counts under its tag (--json adds the NLL of
    each tag's lines), an untagged line under --tag or else every tag, weighted.

    \b
    Examples:
      charlstm evaluate test.txt --json
      charlstm evaluate boys.txt --tag male
    """
    result = _open_model(model_dir).evaluate(names_file, tag)
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo(
            f"{result.nll_per_char:.4f} nats per symbol ({result.bits_per_char:.4f} bits), "
            f"perplexity {result.perplexity:.3f}, over {result.symbols:,} symbols "
            f"in {result.names:,} names"
        )


def _plot_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``info --plot``: a .png or .svg path, else a usage error (issue 15)."""
    if value is not None and not value.lower().endswith((".png", ".svg")):
        raise click.BadParameter(f"{value!r} must end in .png or .svg (the picture's format)")
    return value


@cli.command()
@model_option
@json_option
@click.option(
    "--plot",
    "plot_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    callback=_plot_path,
    help="Also draw the learning curves (train and validation NLL per epoch) into FILE, "
    "a PNG or SVG picture by its extension.",
)
def info(model_dir: str | None, as_json: bool, plot_file: str | None) -> None:
    """Describe a model: alphabet, architecture, size and training record.

    \b
    Examples:
      charlstm info --model pets
      charlstm info --plot curves.png
    """
    model = _open_model(model_dir)
    summary = model.info()
    if plot_file:
        from charlstm.charts import plot_learning_curves

        click.echo(f"wrote {plot_learning_curves(model.path, plot_file)}", err=True)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        for key, value in summary.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            click.echo(f"{key}: {value}")


# --- explain (issue 15): see inside the LSTM ------------------------------------------


@cli.command()
@click.argument("name")
@model_option
@tag_option
@click.option(
    "--top",
    "-k",
    type=_type("top", ExplainOptions),
    default=EXPLAIN.top,
    show_default=True,
    help="How many likeliest other symbols to show at each step.",
)
@click.option(
    "--html",
    "html_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Also write one self-contained HTML page: the name coloured by probability, every "
    "step's distribution, heatmaps of the LSTM's gates and cell state, the learning curves.",
)
@json_option
def explain(
    name: str, model_dir: str | None, tag: str | None, top: int, html_file: str | None, as_json: bool
) -> None:
    """Show how a model predicts NAME, symbol by symbol.

    One row per predicted symbol (each letter, then $ for the end of the name): the
    context read so far (^ is the start), the actual next symbol with its probability,
    its rank, its surprisal in bits (-log2 p) and the likeliest other symbols. The
    total log-probability equals `charlstm score`'s. Colours mark likely (green),
    possible (yellow) and surprising (red) symbols in a terminal; none when piped or
    with NO_COLOR set.

    \b
    Examples:
      charlstm explain Brangelina
      charlstm explain Anna --top 3 --json
      charlstm explain Brangelina --html brangelina.html
      charlstm explain Smith --tag surname
    """
    from charlstm.explain import format_explanation

    model = _open_model(model_dir)
    explanation = model.explain(name, tag, top)
    if html_file:
        from charlstm.explain_html import write_explain_html

        click.echo(f"wrote {write_explain_html(model.directory, explanation, html_file)}", err=True)
    if as_json:
        click.echo(json.dumps(explanation.to_json()))
    else:
        click.echo(format_explanation(explanation), color=False if os.environ.get("NO_COLOR") else None)


# --- end of explain -----------------------------------------------------------------------


# --- issue 17: export (library: charlstm/export.py) ---
@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("output", metavar="OUTPUT", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["savedmodel", "keras", "html"]),
    help="savedmodel: TensorFlow SavedModel directory (signature serving_default: int32 ids "
    "[batch, time] -> log_probs [batch, time, vocab]). keras: one .keras file for plain "
    "Keras. html: one self-contained page that generates names offline in a browser. "
    "Default: html for OUTPUT ending .html, keras for .keras, else savedmodel.",
)
def export(model_path: str, output: str, fmt: str | None) -> None:
    """Write MODEL (a model directory, or the word bundled) to OUTPUT for use without
    charlstm: TensorFlow, Keras or a web page.

    Any model exports, the bundled one included (rebuilt from its weights.npz).
    A SavedModel directory must not exist yet; a page or .keras file is replaced.

    \b
    Examples:
      charlstm export bundled names.html                # open it in a browser
      charlstm export pets --format savedmodel pets-tf  # tf.saved_model.load it
      charlstm export bundled names.keras               # keras.models.load_model it
    """
    from charlstm.export import export_model

    click.echo(export_model(_open_model(model_path).directory, output, fmt), err=True)


# --- end issue 17 ---
_SKIP_TEARDOWN = False


def main() -> None:
    """Console-script entry point.

    After a training, TensorFlow's interpreter teardown takes seconds (tens on a busy
    machine), which would break --time-limit and the prompt exit on Ctrl-C; with every
    file saved, the process leaves at once instead.

    The program (not the library, which sets nothing on import and limits BLAS only
    around inference, :mod:`charlstm.threads`) asks OpenBLAS for one thread before
    numpy loads: starting OpenBLAS' thread pool would add 50 ms or more to every
    command's start-up, for matrices too small to gain from it.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # issue 17: the program's own process only
    try:
        cli(prog_name="charlstm")
    except SystemExit as exc:
        if _SKIP_TEARDOWN:
            sys.stdout.flush()
            sys.stderr.flush()
            code = exc.code
            os._exit(code if isinstance(code, int) else (0 if code is None else 1))
        raise


if __name__ == "__main__":
    sys.exit(main())
