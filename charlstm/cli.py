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
from charlstm.errors import CharlstmError

STARTED = time.monotonic()


class Group(click.Group):
    """Turns the library's errors into one-line messages with exit status 1."""

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


SEED = click.IntRange(0, 2**31 - 1)


def _open_model(option: str | None, inference: bool = True):
    """Open the model a command uses; ``inference``: limit BLAS to one thread until it ends."""
    from charlstm.checkpoint import open_model, resolve_model_dir

    path, why = resolve_model_dir(option)
    model = open_model(path)
    click.echo(f"using model {path} ({why})", err=True)
    if inference:  # issue 17: scoped, instead of OPENBLAS_NUM_THREADS set on import
        from charlstm.threads import single_blas_thread

        click.get_current_context().with_resource(single_blas_thread())
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
@click.argument("names_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@model_option
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True, help="Maximum epochs.")
@click.option(
    "--hidden", type=click.IntRange(min=1), default=256, show_default=True, help="LSTM units per layer."
)
@click.option(
    "--layers", type=click.IntRange(min=1), default=2, show_default=True, help="Stacked LSTM layers."
)
@click.option(
    "--dropout",
    type=FiniteFloatRange(0, 1, max_open=True),
    default=0.3,
    show_default=True,
    help="Dropout between LSTM layers and before the output layer.",
)
@click.option(
    "--recurrent-dropout",
    type=FiniteFloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Dropout on the recurrent state. Any value above 0 leaves the fast cuDNN "
    "GPU kernel (other settings keep it).",
)
@click.option(
    "--alphabet",
    type=click.Choice(["default", "auto"]),
    default="default",
    show_default=True,
    help="default: a-z, case and accents folded (Zoë -> zoe). auto: every symbol in FILE "
    "(other scripts, accents, hyphens, spaces), case folded only; stored with the model.",
)
@click.option(
    "--strategy",
    type=click.Choice(["auto", "none", "mirrored", "multiworker"]),
    default="auto",
    show_default=True,
    help="tf.distribute strategy. auto: mirrored if more than one GPU, else one device "
    "(a GPU if present). mirrored: all local GPUs, each batch split among them. "
    "multiworker: several machines, each running the same command with its own TF_CONFIG "
    "(cluster and task index; worker 0, the chief, writes --model); see README.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--learning-rate", type=FiniteFloatRange(0, min_open=True), default=3e-3, show_default=True)
@click.option(
    "--val-fraction",
    type=FiniteFloatRange(0, 1, max_open=True),
    default=0.1,
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
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Stop after this many epochs without a better validation NLL (not with the "
    "cosine schedule, which runs to the deadline).",
)
@click.option(
    "--time-limit",
    type=FiniteFloatRange(0, min_open=True),
    metavar="SECONDS",
    help="Stop gracefully when this much wall-clock time is spent, keeping the best model.",
)
@click.option(
    "--max-name-length",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Skip names longer than this.",
)
@click.option("--strict", is_flag=True, help="Fail on lines that cannot be used instead of skipping them.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed (split, init, shuffling).")
@click.option(
    "--lr-schedule",
    type=click.Choice(["auto", "plateau", "cosine"]),
    default="auto",
    show_default=True,
    help="plateau: halve the learning rate when validation stalls; cosine: anneal it "
    "to 1% by the --time-limit deadline (needs --time-limit); auto: cosine with "
    "--time-limit, else plateau.",
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
    ctx: click.Context, names_file: str, model_dir: str | None, resume: bool, overwrite: bool, **options
) -> None:
    """Train a character LSTM on FILE, one name per line.

    FILE is UTF-8 text (a BOM is fine) with LF or CRLF line endings. Lines are
    case-folded and accents removed (Zoë -> zoe); blank lines are skipped, and lines
    with other symbols (digits, hyphens, spaces) or longer than --max-name-length
    are skipped with a warning that counts them and gives line numbers (--strict
    makes them an error). Binary, UTF-16 or other non-UTF-8 files are refused. The
    model is written to --model (default ./charlstm-model), keeping the best epoch
    by validation NLL. One training at a time may use a model directory; generate,
    blend and evaluate can read it meanwhile.

    Reported losses are negative log-likelihood per predicted symbol (letters and
    end of name, padding excluded) in nats, with bits beside.

    \b
    Examples:
      charlstm train names.txt
      charlstm train names.txt --model pets --epochs 50 --hidden 128 --layers 1
      charlstm train names.txt --model pets --resume

    Training state is saved every epoch and at least every 60 s. Ctrl-C (SIGINT) or
    SIGTERM stops after the current step, saves, prints how to resume and exits
    with status 130 (SIGINT) or 143 (SIGTERM).
    """
    from pathlib import Path

    from charlstm.checkpoint import DEFAULT_MODEL_DIR, META_FILE
    from charlstm.prepare import Architecture, TrainOptions, prepare_training

    model_dir = model_dir or DEFAULT_MODEL_DIR
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    if resume and not (Path(model_dir) / META_FILE).is_file():
        raise click.BadParameter(f"{model_dir} holds no model to resume", param_hint="'--resume'")
    arch = Architecture(
        hidden=options.pop("hidden"),
        layers=options.pop("layers"),
        dropout=options.pop("dropout"),
        recurrent_dropout=options.pop("recurrent_dropout"),
    )
    opts = TrainOptions(architecture=arch, **options)
    typed = click.core.ParameterSource.COMMANDLINE
    given = frozenset(name for name in ctx.params if ctx.get_parameter_source(name) == typed)
    # Before importing TensorFlow, which takes seconds: bad names files, a model directory
    # another training holds or that already has a model, clashing options fail at once.
    prepared = prepare_training(names_file, model_dir, opts, resume=resume, overwrite=overwrite, given=given)
    with prepared as run:
        from charlstm.training import train_prepared

        record = train_prepared(run, started=STARTED)
    global _SKIP_TEARDOWN
    _SKIP_TEARDOWN = True  # everything is saved, atomically and fsynced
    if record.get("signal"):
        ctx.exit(128 + record["signal"])  # 130 for SIGINT, 143 for SIGTERM


def _letters(value: str, alphabet, option: str) -> str:
    """``value`` folded by the model's alphabet, or a usage error naming the other letters."""
    folded = alphabet.normalize(value)
    bad = alphabet.invalid(folded)
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise click.BadParameter(f"letters outside {alphabet.describe()}: {shown}", param_hint=option)
    return folded


@cli.command()
@model_option
@click.option(
    "--n",
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many names to print.",
)
@click.option(
    "--temperature",
    "-t",
    type=FiniteFloatRange(0, min_open=True),
    default=1.0,
    show_default=True,
    help="Below 1: safer, commoner names; above 1: wilder ones.",
)
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    help="Sample only among the K likeliest next symbols (letters and end of name).",
)
@click.option(
    "--prefix",
    default="",
    help="Names start with these letters (folded like the model's training names).",
)
@click.option(
    "--min-length",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Fewest letters per name, prefix included.",
)
@click.option(
    "--max-length",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Most letters per name; longer samples are discarded.",
)
@click.option("--unique/--allow-duplicates", default=True, show_default=True, help="Print each name once.")
@click.option(
    "--novel", is_flag=True, help="Skip the names the model was trained on (its training-names.txt)."
)
@click.option("--seed", type=SEED, help="Random seed: the same seed gives the same names.")
@json_option
def generate(
    model_dir: str | None,
    count: int,
    temperature: float,
    top_k: int | None,
    prefix: str,
    min_length: int,
    max_length: int,
    unique: bool,
    novel: bool,
    seed: int | None,
    as_json: bool,
) -> None:
    """Print exactly N names sampled from a model, one per line.

    If the options leave the model unable to produce N (distinct) names, it fails
    with an error rather than print fewer. With --json each line is an object with
    the name and its log-probability in nats under the model (at temperature 1).

    \b
    Examples:
      charlstm generate --n 20
      charlstm generate --n 5 --prefix ma --temperature 0.7 --seed 1
      charlstm generate --model pets --n 100 --novel --json
    """
    from charlstm.checkpoint import NAMES_FILE
    from charlstm.sampling import sample_names

    if min_length > max_length:
        raise click.BadParameter(
            f"{min_length} is greater than --max-length {max_length}", param_hint="'--min-length'"
        )
    model = _open_model(model_dir)
    prefix = _letters(prefix, model.alphabet, "'--prefix'")
    if len(prefix) > max_length:
        raise click.BadParameter(
            f"{prefix!r} is longer than --max-length {max_length}", param_hint="'--prefix'"
        )
    exclude = model.training_names() if novel else set()
    if novel and not exclude:
        raise CharlstmError(
            f"{model.path / NAMES_FILE}: missing or empty, so --novel cannot tell which names are new"
        )
    samples = sample_names(
        model.lm(),
        model.alphabet,
        count,
        seed=seed,
        temperature=temperature,
        top_k=top_k,
        prefix=prefix,
        min_length=min_length,
        max_length=max_length,
        unique=unique,
        exclude=exclude,
    )
    lines = (
        json.dumps({"name": s.name.capitalize(), "log_prob": round(s.log_prob, 4)})
        if as_json
        else s.name.capitalize()
        for s in samples
    )
    click.echo("\n".join(lines))


@cli.command()
@click.argument("names", nargs=-1, required=True)
@model_option
@json_option
def score(names: tuple[str, ...], model_dir: str | None, as_json: bool) -> None:
    """Print how likely a model finds each NAME.

    One line per name: the name, its NLL per predicted symbol (letters and end of
    name) in nats and in bits (lower is likelier), and its total log-probability
    in nats, separated by tabs.

    \b
    Example:
      charlstm score Anna Xqzz
    """
    from charlstm.evaluation import score_names

    model = _open_model(model_dir)
    folded = [model.alphabet.normalize(n.strip()) for n in names]
    for raw, name in zip(names, folded, strict=False):
        if not name or model.alphabet.invalid(name):
            raise click.BadParameter(
                f"{raw!r} is not a name in {model.alphabet.describe()}", param_hint="NAMES"
            )
    for raw, s in zip(names, score_names(model.lm(), model.alphabet, folded), strict=False):
        if as_json:
            nll = {"nll_per_char": s.nll_per_char, "bits_per_char": s.bits_per_char}
            click.echo(json.dumps({"name": raw, **nll, "log_prob": s.log_prob}))
        else:
            click.echo(f"{raw}\t{s.nll_per_char:.4f}\t{s.bits_per_char:.4f}\t{s.log_prob:.4f}")


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
    type=click.IntRange(min=1),
    default=10,
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
      printf 'smoke fog\\nchar lizard\\n' | charlstm blend --pairs - --top 1
      charlstm blend --eval blends-dev.tsv
    """
    from charlstm.blend import Blender, read_pairs
    from charlstm.checkpoint import bundled_model_dir, open_model

    sources = sum(x is not None for x in (pairs_file, eval_file)) + (word1 is not None)
    if sources != 1:
        raise click.UsageError("give WORD1 WORD2, or --pairs FILE, or --eval FILE.tsv (exactly one)")
    if word1 is not None and word2 is None:
        raise click.UsageError("missing WORD2: blend needs two words")
    words_dir = words_model or bundled_model_dir("words")
    model = _open_model(model_dir)
    click.echo(f"using words model {words_dir} ({'--words-model' if words_model else 'bundled'})", err=True)
    blender = Blender.open(model, open_model(words_dir))

    def read(fh, columns: int) -> list[tuple[str, ...]]:
        source = getattr(fh, "name", "<stdin>")  # Click's test runner gives stdin no name
        try:
            return read_pairs(fh, source, model.alphabet, columns=columns)
        except UnicodeDecodeError as exc:
            raise CharlstmError(f"{source}: not UTF-8 text ({exc.reason})") from None

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
@json_option
def evaluate(names_file: str, model_dir: str | None, as_json: bool) -> None:
    """Measure a model's NLL on a names file.

    Every line counts (duplicates too): total NLL of all predicted symbols (letters
    and end of name) divided by their count, in nats and bits per symbol.

    \b
    Example:
      charlstm evaluate test.txt --json
    """
    from charlstm.data import load_names
    from charlstm.evaluation import evaluate_names

    model = _open_model(model_dir)
    corpus = load_names(names_file, model.alphabet, max_length=10**6)
    if corpus.skipped_summary():
        click.echo(f"warning: {corpus.skipped_summary()}", err=True)
    result = evaluate_names(model.lm(), model.alphabet, corpus.names)
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo(
            f"{result.nll_per_char:.4f} nats per symbol ({result.bits_per_char:.4f} bits), "
            f"perplexity {result.perplexity:.3f}, over {result.symbols:,} symbols "
            f"in {result.names:,} names"
        )


@cli.command()
@model_option
@json_option
def info(model_dir: str | None, as_json: bool) -> None:
    """Describe a model: alphabet, architecture, size and training record.

    \b
    Example:
      charlstm info --model pets
    """
    model = _open_model(model_dir, inference=False)
    meta = model.meta
    training = meta.get("training", {})
    summary = {
        "path": str(model.path),
        "format_version": meta["format_version"],
        "alphabet": "".join(model.alphabet.symbols).replace("\n", "\\n"),
        "architecture": meta.get("architecture"),
        "parameters": meta.get("parameters"),
        "epochs": training.get("epochs"),
        "best_epoch": training.get("best_epoch"),
        "best_val_nll": training.get("best_val_nll"),
        "training_file": training.get("file"),
        "training_names": training.get("names"),
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        for key, value in summary.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            click.echo(f"{key}: {value}")


# --- issue 17: export (library: charlstm/export.py) ---
@cli.command()
@click.argument("output", metavar="OUTPUT", type=click.Path())
@model_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["savedmodel", "keras", "html"]),
    help="savedmodel: TensorFlow SavedModel directory (signature serving_default: int32 ids "
    "[batch, time] -> log_probs [batch, time, vocab]). keras: one .keras file for plain "
    "Keras. html: one self-contained page that generates names offline in a browser. "
    "Default: html for OUTPUT ending .html, keras for .keras, else savedmodel.",
)
def export(output: str, model_dir: str | None, fmt: str | None) -> None:
    """Write a model for use without charlstm: TensorFlow, Keras or a web page.

    Any model exports, the bundled one included (rebuilt from its weights.npz).
    A SavedModel directory must not exist yet; a page or .keras file is replaced.

    \b
    Examples:
      charlstm export names.html                    # open it in a browser
      charlstm export --model pets pets-savedmodel  # tf.saved_model.load it
      charlstm export names.keras                   # keras.models.load_model it
    """
    from charlstm.export import export_model

    click.echo(export_model(_open_model(model_dir, inference=False), output, fmt), err=True)


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
