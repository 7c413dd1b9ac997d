"""Speed of ``charlstm blend`` against the issue-5 targets (``make bench-blend``).

1. Wall time of ``charlstm blend Brad Angelina`` over that of ``python -c "import keras"``
   (target: at most 0.4), medians of several runs, each a fresh process.
2. Pairs per second of ``charlstm blend --pairs FILE --top 1`` over random pairs of
   words from data/words.txt, start-up included (target: at least 200), by wall
   clock and per CPU second (the second is what a busy shared machine cannot skew).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHARLSTM = [sys.executable, "-m", "charlstm"]


def timed(command: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def wall(command: list[str]) -> float:
    return timed(command)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=2000)
    args = parser.parse_args()

    keras = statistics.median(wall([sys.executable, "-c", "import keras"]) for _ in range(args.runs))
    one = statistics.median(wall([*CHARLSTM, "blend", "Brad", "Angelina"]) for _ in range(args.runs))
    print(f'python -c "import keras": {keras:.3f} s (median of {args.runs})')
    print(f"charlstm blend Brad Angelina: {one:.3f} s (median of {args.runs})")
    print(f"ratio {one / keras:.3f} (target <= 0.4)")

    words = [w for w in (ROOT / "data/words.txt").read_text().split() if 3 <= len(w) <= 10]
    rng = random.Random(0)
    lines = "".join(f"{rng.choice(words)}\t{rng.choice(words)}\n" for _ in range(args.pairs))
    with tempfile.NamedTemporaryFile("w", suffix=".tsv") as fh:
        fh.write(lines)
        fh.flush()
        seconds, cpu = timed([*CHARLSTM, "blend", "--pairs", fh.name, "--top", "1"])
    print(f"charlstm blend --pairs: {args.pairs} pairs, start-up included:")
    print(f"  {seconds:.2f} s wall: {args.pairs / seconds:.0f} pairs/s (target >= 200)")
    print(f"  {cpu:.2f} s CPU: {args.pairs / cpu:.0f} pairs per CPU second")


if __name__ == "__main__":
    main()
