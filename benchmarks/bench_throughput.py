"""Training throughput: symbols/s of the default model before and after issue 16's defaults.

Usage: python benchmarks/bench_throughput.py DATA_DIR [--seconds S] [--rounds R]

Trains on ``DATA_DIR/names-ssa2018-train.txt`` for ``--seconds`` with each
configuration in turn, ``--rounds`` times (alternating, so both see the same machine),
and prints the symbols/s of the epochs after the first (which also builds the graph):

- ``before``: the defaults before issue 16
  (``--dropout 0.3 --input-dropout 0 --weight-decay 0 --learning-rate 3e-3``);
- ``after``: today's defaults.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
from pathlib import Path

BEFORE = ["--dropout", "0.3", "--input-dropout", "0", "--weight-decay", "0", "--learning-rate", "3e-3"]
CONFIGS = {"before": BEFORE, "after": []}


def symbols_per_sec(train_file: Path, model: Path, seconds: float, options: list[str]) -> list[float]:
    """Train for ``seconds``; the symbols/s of every epoch but the first."""
    subprocess.run(
        [sys.executable, "-m", "charlstm", "train", str(train_file), "--model", str(model), "--overwrite",
         "--time-limit", str(seconds), *options],
        check=True, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    with (model / "history.csv").open() as rows:
        return [float(row["symbols_per_sec"]) for row in csv.DictReader(rows)][1:]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with names-ssa2018-train.txt")
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("build/bench-throughput"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    train_file = args.data / "names-ssa2018-train.txt"
    if not train_file.is_file():
        print(f"skipped: {train_file} not found")
        return 0
    speeds: dict[str, list[float]] = {name: [] for name in CONFIGS}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, options in CONFIGS.items():
            speeds[name] += symbols_per_sec(train_file, args.out / name, args.seconds, options)
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; {args.rounds} rounds "
          f"of {args.seconds:.0f} s each")  # fmt: skip
    for name, options in CONFIGS.items():
        values = speeds[name]
        label = " ".join(options) or "(defaults)"
        print(f"  {name:6s} {label:72s} {statistics.median(values):,.0f} symbols/s "
              f"(median of {len(values)} epochs, {min(values):,.0f}-{max(values):,.0f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
