"""Peak memory and speed of `charlstm train` on a 1,000,000-name file (issue 7).

Builds the file from data/names.txt: each name joins the start of one real name to
the end of another (seeded), so lengths and letters stay realistic. Then runs
``charlstm train BIG --epochs 1`` as a child process and prints its peak resident
memory (``ru_maxrss`` of the child; Linux reports KiB) and training symbols/s.
While the child runs, its high-water mark so far (VmHWM) is printed every minute,
so a run cut short still tells the peak it reached. Target: <= 1.5 GB.

    python benchmarks/bench_memory.py [--names N] [-- extra train options]
"""

from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_BYTES = 1.5e9


def build_names(path: Path, count: int, seed: int = 0) -> None:
    """Write ``count`` names, each a prefix of one real name plus a suffix of another."""
    real = [n.strip() for n in (ROOT / "data" / "names.txt").read_text(encoding="utf-8").splitlines()]
    real = [n for n in real if len(n) >= 2]
    rng = np.random.default_rng(seed)
    firsts, seconds = rng.integers(len(real), size=(2, count))
    cuts = rng.random((2, count))
    with path.open("w", encoding="utf-8") as fh:
        for i in range(count):
            a, b = real[firsts[i]], real[seconds[i]]
            head = a[: 1 + int(cuts[0, i] * (len(a) - 1))]
            tail = b[1 + int(cuts[1, i] * (len(b) - 1)) :]
            fh.write(f"{head}{tail}\n")


def vm_hwm_mib(pid: int) -> float | None:
    """The process's resident high-water mark so far, from /proc (Linux), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--names", type=int, default=1_000_000, help="names in the generated file")
    parser.add_argument("train_args", nargs="*", help="extra options for charlstm train (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        big, model = Path(tmp) / "big.txt", Path(tmp) / "model"
        started = time.monotonic()
        build_names(big, args.names)
        size = big.stat().st_size
        print(f"built {big}: {args.names:,} names, {size / 1e6:.1f} MB in {time.monotonic() - started:.0f} s")
        train = ["train", str(big), "--epochs", "1", "--model", str(model), *args.train_args]
        command = [sys.executable, "-m", "charlstm", *train]
        print("running: charlstm " + " ".join(command[3:]), flush=True)
        started = time.monotonic()
        child = subprocess.Popen(command)  # its log goes to stderr as it comes
        report = started + 60
        while (status := child.poll()) is None:
            time.sleep(1)
            if time.monotonic() >= report:
                elapsed = time.monotonic() - started
                print(f"peak so far {vm_hwm_mib(child.pid) or 0:,.0f} MiB after {elapsed:.0f} s", flush=True)
                report += 60
        wall = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
        speed = None
        if (model / "history.csv").is_file():
            with (model / "history.csv").open() as fh:
                speed = float(next(csv.DictReader(fh))["symbols_per_sec"])
    verdict = "meets" if peak <= TARGET_BYTES else "MISSES"
    print(f"charlstm train exit status {status}, {wall:.0f} s wall")
    print(
        f"peak resident memory: {peak / 1e6:,.0f} MB ({peak / 2**20:,.0f} MiB), {verdict} the 1.5 GB target"
    )
    print(f"training speed: {speed:,.0f} symbols/s" if speed else "training speed: no epoch finished")
    return 0 if status == 0 and peak <= TARGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
