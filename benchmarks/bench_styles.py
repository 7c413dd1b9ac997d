"""Names in a style: tag fidelity, classification and what conditioning on a tag buys.

Usage: python benchmarks/bench_styles.py [NAMES_TSV] [--model DIR] [--time-limit S] [--work DIR]

NAMES_TSV is the tagged census file (``data/names.tsv``: female, male and surname
lists, ``name<TAB>tag``). Three measurements, each through the command line:

1. Tag fidelity of a tagged model (default: the bundled one): of 2,000 names from
   ``generate --tag female`` (and ``male``), among those on exactly one of the two
   first-name lists, the share on the requested list; of 2,000 ``--tag surname``,
   among those on exactly one of (the first-name lists, the family-name list), the
   share of family names. Target: at least 95% each.
2. Classification: a tagged model trained on 90% of the first names that are on one
   list only (seeded split) classifies the other 10% (``charlstm classify``).
   Target: accuracy at least 85%; beside it, a baseline (the majority gender of the
   training names that share the last two letters, else the last letter, else all).
3. Conditioning pays: on the same held-out names, the tagged model's NLL per symbol
   (each under its tag) against an untagged model trained on the same names with the
   same options and time budget.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

FIDELITY, ACCURACY = 0.95, 0.85
SAMPLES = 2000
TRAIN_OPTIONS = ["--hidden", "128", "--layers", "1", "--dropout", "0.3", "--seed", "1"]


def charlstm(*args: str) -> str:
    """Run ``charlstm ARGS`` in a fresh process; its stdout."""
    done = subprocess.run([sys.executable, "-m", "charlstm", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"charlstm {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def read_lists(path: Path) -> dict[str, set[str]]:
    lists: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, tag = line.partition("\t")
        lists.setdefault(tag, set()).add(name.lower())
    return lists


def fidelity(model: str, lists: dict[str, set[str]]) -> dict[str, tuple[float, int]]:
    """Per tag: the share of generated names on the right list, among the unambiguous ones."""
    firsts = lists["female"] | lists["male"]
    result = {}
    for tag in ("female", "male", "surname"):
        drawn = charlstm("generate", "--model", model, "--tag", tag, "--n", str(SAMPLES), "--seed", "1",
                         "--allow-duplicates").split()  # fmt: skip
        drawn = [n.lower() for n in drawn]
        if tag == "surname":
            own, other = lists["surname"], firsts
        else:
            own, other = lists[tag], lists["male" if tag == "female" else "female"]
        clear = [n for n in drawn if (n in own) != (n in other)]
        result[tag] = (sum(n in own for n in clear) / max(len(clear), 1), len(clear))
    return result


def split_first_names(lists: dict[str, set[str]], seed: int = 0) -> tuple[list, list]:
    """First names on exactly one list, as (name, tag), split 90/10 with ``seed``."""
    only = {t: lists[t] - lists["male" if t == "female" else "female"] for t in ("female", "male")}
    rows = sorted((n, t) for t, names in only.items() for n in names)
    order = np.random.default_rng(seed).permutation(len(rows))
    cut = len(rows) - round(len(rows) / 10)
    return [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]


def baseline(train: list, test: list) -> float:
    """Accuracy of the majority gender of training names with the same last two letters."""
    by_end: dict[str, Counter] = {}
    for name, tag in train:
        for k in (2, 1, 0):
            by_end.setdefault(name[len(name) - k :] if k else "", Counter())[tag] += 1
    hits = 0
    for name, tag in test:
        for k in (2, 1, 0):
            votes = by_end.get(name[len(name) - k :] if k else "")
            if votes:
                hits += votes.most_common(1)[0][0] == tag
                break
    return hits / len(test)


def compare_tag_inputs(files: dict[str, Path], budget: list[str], work: Path, names: list[str]) -> None:
    """Held-out NLL and classification accuracy with the tag at every step, as initial state, or both."""
    print("\nWhere the tag enters (train --tag-input), same split, options and time budget:")
    for where in ("step", "state", "both"):
        model = str(work / f"tag-{where}")
        charlstm("train", str(files["train"]), "--model", model, "--tag-input", where, *budget)
        nll = json.loads(charlstm("evaluate", str(files["test"]), "--model", model, "--json"))["nll_per_char"]
        out = charlstm("classify", "--model", model, "--json", *names)
        truth = [line.split("\t")[1] for line in files["test"].read_text(encoding="utf-8").splitlines()]
        guesses = [next(iter(json.loads(line)["probabilities"])) for line in out.splitlines()]
        accuracy = float(np.mean([g == t for g, t in zip(guesses, truth, strict=True)]))
        print(f"  --tag-input {where:5s}: held-out NLL {nll:.4f}, classify accuracy {accuracy:.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names_tsv", type=Path, nargs="?", default=Path("data/names.tsv"))
    parser.add_argument("--model", default=None, help="tagged model to measure (default: the bundled one)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds for each trained model")
    parser.add_argument("--work", type=Path, default=Path("build/bench-styles"))
    parser.add_argument(
        "--tag-inputs", action="store_true", help="also compare where the tag enters (train --tag-input)"
    )
    args = parser.parse_args()
    lists = read_lists(args.names_tsv)
    model = args.model or str(Path(__file__).resolve().parent.parent / "charlstm" / "pretrained" / "names")
    print(f"1-min load average at start: {os.getloadavg()[0]:.1f}")

    print(f"Tag fidelity, {model}, {SAMPLES} samples per tag (seed 1):")
    for tag, (share, clear) in fidelity(model, lists).items():
        verdict = "met" if share >= FIDELITY else "MISSED"
        print(f"  --tag {tag:8s} {share:6.1%} of {clear:4d} unambiguous names on the {tag} list "
              f"(target >= {FIDELITY:.0%}): {verdict}")  # fmt: skip

    train, test = split_first_names(lists)
    args.work.mkdir(parents=True, exist_ok=True)
    files = {}
    for part, rows in (("train", train), ("test", test)):
        files[part] = args.work / f"{part}.tsv"
        files[part].write_text("".join(f"{n}\t{t}\n" for n, t in rows), encoding="utf-8")
    files["untagged"] = args.work / "train.txt"
    files["untagged"].write_text("".join(f"{n}\n" for n, _ in train), encoding="utf-8")
    budget = ["--time-limit", str(args.time_limit), "--overwrite", *TRAIN_OPTIONS]
    print(f"\nFirst names on one list only: {len(train)} to train, {len(test)} held out; each model "
          f"`charlstm train ... {' '.join(budget)}`")  # fmt: skip
    tagged, untagged = str(args.work / "tagged"), str(args.work / "untagged")
    charlstm("train", str(files["train"]), "--model", tagged, *budget)
    charlstm("train", str(files["untagged"]), "--model", untagged, *budget)

    names = [n for n, _ in test]
    for prior in ("uniform", "frequency"):
        out = charlstm("classify", "--model", tagged, "--prior", prior, "--json", *names)
        guesses = [next(iter(json.loads(line)["probabilities"])) for line in out.splitlines()]
        accuracy = float(np.mean([g == t for g, (_, t) in zip(guesses, test, strict=True)]))
        note = " (the default)" if prior == "uniform" else ""
        verdict = "met" if accuracy >= ACCURACY else "MISSED"
        print(f"  classify --prior {prior}{note}: accuracy {accuracy:.1%} "
              f"(target >= {ACCURACY:.0%}): {verdict}")  # fmt: skip
    base = baseline(train, test)
    print(f"  baseline, majority gender of the same last two letters: {base:.1%}")

    with_tags = json.loads(charlstm("evaluate", str(files["test"]), "--model", tagged, "--json"))
    test_untagged = args.work / "test.txt"
    test_untagged.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    without = json.loads(charlstm("evaluate", str(test_untagged), "--model", untagged, "--json"))
    mixture = json.loads(charlstm("evaluate", str(test_untagged), "--model", tagged, "--json"))
    gain = without["nll_per_char"] - with_tags["nll_per_char"]
    print(f"\nHeld-out NLL per symbol: tagged model, each name under its tag "
          f"{with_tags['nll_per_char']:.4f}; "
          f"untagged model {without['nll_per_char']:.4f}; tagged model without tags (mixture) "
          f"{mixture['nll_per_char']:.4f}")  # fmt: skip
    print(f"  conditioning pays: {gain:+.4f} nats per symbol: {'met' if gain > 0 else 'MISSED'}")
    if args.tag_inputs:
        compare_tag_inputs(files, budget, args.work, names)
    print(f"1-min load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
