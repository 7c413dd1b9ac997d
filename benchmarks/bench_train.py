"""Quality benchmark: train on the standard names split with a 10-minute budget.

Usage: python benchmarks/bench_train.py DATA_DIR [--time-limit S] [--model DIR] [-- TRAIN OPTIONS]

Trains ``charlstm train DATA_DIR/names-ssa2018-train.txt --time-limit 600`` with the
default settings (plus any options after ``--``), then prints the test NLL per symbol
that ``charlstm evaluate DATA_DIR/names-ssa2018-test.txt --json`` reports. Target:
at most 1.88 nats. The machine's load is printed too: on a shared machine the run
gets less CPU than the budget suggests. Exits 0 with a note when the data is absent.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TARGET = 1.88


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with names-ssa2018-train.txt and -test.txt")
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--model", type=Path, default=Path("build/bench-train"))
    args = parser.parse_args(argv)
    train_file, test_file = args.data / "names-ssa2018-train.txt", args.data / "names-ssa2018-test.txt"
    if not (train_file.is_file() and test_file.is_file()):
        print(f"skipped: {train_file} or {test_file} not found")
        return 0
    charlstm = [sys.executable, "-m", "charlstm"]
    train = [*charlstm, "train", str(train_file), "--model", str(args.model), "--overwrite",
             "--time-limit", str(args.time_limit), *extra]  # fmt: skip
    print("$", " ".join(train[2:]), flush=True)
    load_before = os.getloadavg()[0]
    cpu_before = os.times()
    started = time.monotonic()
    subprocess.run(train, check=True)
    wall = time.monotonic() - started
    cpu_after = os.times()
    cpu = (cpu_after.children_user - cpu_before.children_user) + (
        cpu_after.children_system - cpu_before.children_system
    )
    evaluate = [*charlstm, "evaluate", str(test_file), "--model", str(args.model), "--json"]
    print("$", " ".join(evaluate[2:]), flush=True)
    result = json.loads(subprocess.run(evaluate, check=True, capture_output=True, text=True).stdout)
    print(json.dumps(result))
    meta = json.loads((args.model / "model.json").read_text())
    training = meta["training"]
    with (args.model / "history.csv").open() as rows:
        speeds = sorted(float(row["symbols_per_sec"]) for row in csv.DictReader(rows))
    print(
        f"training: {wall:.0f} s wall (limit {args.time_limit:.0f} s), {cpu:.0f} s CPU on "
        f"{os.cpu_count()} cores (load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after); "
        f"{training.get('epochs')} epochs, best {training.get('best_epoch')}, "
        f"{meta.get('parameters'):,} parameters; median epoch {speeds[len(speeds) // 2]:,.0f} symbols/s"
    )
    nll = result["nll_per_char"]
    verdict = "met" if nll <= TARGET else "missed"
    bits = result["bits_per_char"]
    print(f"test NLL: {nll:.4f} nats/symbol ({bits:.4f} bits); target <= {TARGET}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
