"""Fine-tuning benchmark (issue 14): small files, fine-tuned from the bundled model vs from scratch.

Usage: python benchmarks/bench_finetune.py [FILE...] [--faker LOCALES] [--time-limit S] [--runs R,...]

Each FILE (default: first names of the ``--faker`` locales, built into build/ with the
``faker`` package, which this script needs only then) is split, seeded, into
``--train-names`` (300) training names and a test split of the rest (a-z names only,
after folding). Then, each with the same ``--time-limit`` (60 s):

- ``finetune``: ``charlstm train TRAIN --init-from bundled`` (fine-tuning's defaults);
- ``scratch``: ``charlstm train TRAIN`` with the defaults;
- ``small``: ``charlstm train TRAIN`` with the best options found for small files.

For each it prints the test NLL per symbol (``charlstm evaluate``, under the file's own
tag when the model is tagged), the share of novel names among 1,000 samples (not among
the training names) and the share of those novel samples that are test names or within
one edit of one. Targets: fine-tuned NLL at least 0.10 nats below the better scratch
run; fine-tuned novel share at least 70%.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

FAKER_LOCALES = "tr_TR,is_IS,sv_SE"
SMALL_FILE_OPTIONS = ["--hidden", "128", "--layers", "1", "--dropout", "0.4", "--batch-size", "16"]
NLL_MARGIN, NOVEL_TARGET = 0.10, 0.70
MIN_TEST_NAMES = 50  # a corpus with fewer names beyond the training split is skipped
RUNS = {"finetune": ["--init-from", "bundled"], "scratch": [], "small": SMALL_FILE_OPTIONS}


def fold(text: str) -> str:
    """Lowercase, accents removed; empty unless the result is a-z only."""
    folded = "".join(
        c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c)
    )
    return folded if folded.isascii() and folded.isalpha() else ""


def faker_names(locale: str) -> list[str]:
    """The distinct a-z first names a faker locale carries."""
    import importlib

    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    names: set[str] = set()
    for attr in ("first_names", "first_names_female", "first_names_male"):
        value = getattr(provider, attr, ())
        if isinstance(value, (list, tuple, dict)):
            names.update(value)
    return sorted({fold(n) for n in names} - {""})


def split(names: list[str], train: int, seed: int, out: Path, stem: str) -> tuple[Path, Path]:
    """Write ``stem.txt`` (``train`` of ``names``, shuffled) and ``stem-test.txt`` (the rest) in ``out``."""
    names = list(names)
    random.Random(seed).shuffle(names)
    out.mkdir(parents=True, exist_ok=True)
    train_file, test_file = out / f"{stem}.txt", out / f"{stem}-test.txt"
    train_file.write_text("\n".join(names[:train]) + "\n", encoding="utf-8")
    test_file.write_text("\n".join(names[train:]) + "\n", encoding="utf-8")
    return train_file, test_file


def charlstm(*args: str, log: Path | None = None) -> str:
    """Run ``charlstm ARGS`` (stderr to ``log``), return its stdout."""
    with open(log, "a") if log else open("/dev/null", "w") as err:
        done = subprocess.run([sys.executable, "-m", "charlstm", *args], stdout=subprocess.PIPE, stderr=err,
                              text=True, check=True)  # fmt: skip
    return done.stdout


def near(name: str, test: set[str]) -> bool:
    """Is ``name`` a test name or one edit (insert, delete, substitute) away from one?"""
    if name in test:
        return True
    letters = "abcdefghijklmnopqrstuvwxyz"
    cuts = [(name[:i], name[i:]) for i in range(len(name) + 1)]
    edits = {a + b[1:] for a, b in cuts if b}
    edits |= {a + c + b[1:] for a, b in cuts if b for c in letters}
    edits |= {a + c + b for a, b in cuts for c in letters}
    return not edits.isdisjoint(test)


def measure(model: Path, train_file: Path, test_file: Path, samples: int) -> dict:
    """Test NLL, novel share of ``samples`` draws, and the near-test share of the novel ones."""
    meta = json.loads((model / "model.json").read_text())
    tag = ["--tag", train_file.stem] if train_file.stem in meta.get("tags", []) else []
    result = json.loads(charlstm("evaluate", str(test_file), "--model", str(model), *tag, "--json"))
    # generate prints names capitalised; the files hold them folded
    drawn = charlstm("generate", "--model", str(model), "--n", str(samples), "--seed", "1",
                     "--allow-duplicates", *tag).lower().split()  # fmt: skip
    train = set(train_file.read_text().split())
    test = set(test_file.read_text().split())
    novel = [n for n in drawn if n not in train]
    training = meta["training"]
    return {
        "nll": result["nll_per_char"],
        "novel": len(novel) / max(len(drawn), 1),
        "near_test": sum(near(n, test) for n in novel) / max(len(novel), 1),
        "epochs": training.get("epochs"),
        "best_epoch": training.get("best_epoch"),
    }


def bench_file(train_file: Path, test_file: Path, args: argparse.Namespace, extra: list[str]) -> dict:
    """Every run on one file; prints a line per run and returns the results by run."""
    results = {}
    test_names = len(test_file.read_text().split())
    print(
        f"\n{train_file.stem}: {len(train_file.read_text().split())} training names, {test_names} test names"
    )
    bundled = json.loads(
        charlstm("evaluate", str(test_file), "--model", "charlstm/pretrained/names", "--json")
    )
    print(f"  bundled, unchanged: test NLL {bundled['nll_per_char']:.4f}")
    for run in args.runs.split(","):
        model = args.out / f"{train_file.stem}-{run}"
        options = RUNS[run] + (extra if run == "finetune" else [])
        started = time.monotonic()
        charlstm("train", str(train_file), "--model", str(model), "--overwrite", "--seed", str(args.seed),
                 "--time-limit", str(args.time_limit), *options,
                 log=args.out / f"{model.name}.log")  # fmt: skip
        wall = time.monotonic() - started
        results[run] = result = measure(model, train_file, test_file, args.samples)
        print(f"  {run:9s} {' '.join(options) or '(defaults)':58s} test NLL {result['nll']:.4f}  "
              f"novel {result['novel']:.1%}, of which near a test name {result['near_test']:.1%}  "
              f"(best epoch {result['best_epoch']}/{result['epochs']}, {wall:.0f} s)",
              flush=True)  # fmt: skip
    if {"finetune", "scratch", "small"} <= results.keys():
        gained = gain(results)
        print(f"  fine-tuned gains {gained:.4f} nats over the better scratch run (target >= {NLL_MARGIN}): "
              f"{'met' if gained >= NLL_MARGIN else 'missed'}; novel share "
              f"{'met' if results['finetune']['novel'] >= NOVEL_TARGET else 'missed'}")  # fmt: skip
    return results


def gain(results: dict) -> float:
    """How much lower the fine-tuned test NLL is than the better scratch run's."""
    return min(results["scratch"]["nll"], results["small"]["nll"]) - results["finetune"]["nll"]


def summarise(by_corpus: dict[str, dict]) -> None:
    """One line per target over every corpus that ran all three runs."""
    whole = {stem: r for stem, r in by_corpus.items() if {"finetune", "scratch", "small"} <= r.keys()}
    if not whole:
        return
    gains = ", ".join(f"{stem} {gain(r):.3f}" for stem, r in whole.items())
    met = sum(gain(r) >= NLL_MARGIN for r in whole.values())
    novel = sum(r["finetune"]["novel"] >= NOVEL_TARGET for r in whole.values())
    print(f"\nsummary: gain over the better scratch run (target >= {NLL_MARGIN}): {gains}; "
          f"met on {met} of {len(whole)} corpora; novel share met on {novel} of {len(whole)}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:  # more options for the fine-tuning run (experiments)
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="names files (default: built from --faker)")
    parser.add_argument("--faker", default=FAKER_LOCALES, help="faker locales whose first names to use")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--train-names", type=int, default=300)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--out", type=Path, default=Path("build/bench-finetune"))
    args = parser.parse_args(argv)
    results: dict[str, dict] = {}
    sources = {f.stem: f.read_text(encoding="utf-8").split() for f in args.files}
    if not args.files:
        sources = {loc.split("_")[0]: faker_names(loc) for loc in args.faker.split(",")}
    for stem, names in sources.items():
        names = sorted({fold(n) for n in names} - {""})
        if len(names) < args.train_names + MIN_TEST_NAMES:
            print(f"\n{stem}: skipped, {len(names)} a-z names (at least {args.train_names + MIN_TEST_NAMES} "
                  f"make {args.train_names} training names and {MIN_TEST_NAMES} test names)")  # fmt: skip
            continue
        train_file, test_file = split(names, args.train_names, args.seed, args.out / "data", stem)
        results[stem] = bench_file(train_file, test_file, args, extra)
    summarise(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
