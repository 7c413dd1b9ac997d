"""Benchmark `charlstm generate` against the issue's two targets.

1. Start-up: ``charlstm generate --n 20`` wall time <= 0.4 x the wall time of
   ``python -c "import keras"`` (median of RUNS, the two interleaved).
2. Throughput: ``charlstm generate --n 100000`` with the bundled model >= 20,000
   names per second, start-up included (median of RUNS).
3. Constraints (issue 13): ``charlstm generate --suffix ella --n 100`` and
   ``charlstm generate --tag male --contains or --n 100`` each <= 1 s wall, whole
   process (median of RUNS). ``--tag male`` is passed only when the bundled model has
   tags (``model.json`` key ``tags``); otherwise ``--contains or --n 100`` is timed.

Every command runs as a fresh process in an empty directory, so the bundled model
is used. Prints the figures; exits 1 if a target is missed.

    python benchmarks/bench_generate.py [--runs 5] [--n 100000] [--threads K]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_RATIO = 0.4
NAMES_PER_SECOND = 20_000
CONSTRAINED_SECONDS = 1.0


def constrained_commands() -> list[list[str]]:
    """The two constrained ``generate`` argument lists of target 3."""
    from charlstm.checkpoint import META_FILE, bundled_model_dir

    meta = json.loads((bundled_model_dir() / META_FILE).read_text(encoding="utf-8"))
    tag = ["--tag", "male"] if meta.get("tags") else []
    return [
        ["generate", "--suffix", "ella", "--n", "100"],
        ["generate", *tag, "--contains", "or", "--n", "100"],
    ]


def wall(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, bytes]:
    """Seconds one process takes from start to exit, and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}")
    return seconds, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (median)")
    parser.add_argument("--n", type=int, default=100_000, help="names for the throughput run")
    parser.add_argument("--threads", type=int, help="OPENBLAS_NUM_THREADS (default: charlstm's scoped 1)")
    args = parser.parse_args()

    bindir = Path(sys.executable).parent
    charlstm = (
        [str(bindir / "charlstm")] if (bindir / "charlstm").exists() else [sys.executable, "-m", "charlstm"]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CHARLSTM_MODEL", "OPENBLAS_NUM_THREADS")}
    if args.threads:
        env["OPENBLAS_NUM_THREADS"] = str(args.threads)
    small, keras, large = [], [], []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cwd:
        wall([*charlstm, "generate", "--n", "1"], env, cwd)  # warm the file cache
        for _ in range(args.runs):
            small.append(wall([*charlstm, "generate", "--n", "20"], env, cwd)[0])
            keras.append(wall([sys.executable, "-c", "import keras"], env, cwd)[0])
        for _ in range(args.runs):
            seconds, out = wall([*charlstm, "generate", "--n", str(args.n)], env, cwd)
            if len(out.splitlines()) != args.n:
                sys.exit(f"generate --n {args.n} printed {len(out.splitlines())} names")
            large.append(seconds)
        constrained = {}
        for command in constrained_commands():
            times = constrained.setdefault(" ".join(command), [])
            for _ in range(args.runs):
                seconds, out = wall([*charlstm, *command], env, cwd)
                if len(out.splitlines()) != 100:
                    sys.exit(f"{' '.join(command)} printed {len(out.splitlines())} names")
                times.append(seconds)

    ratio = statistics.median(small) / statistics.median(keras)
    rate = args.n / statistics.median(large)
    ok_start, ok_rate = ratio <= START_RATIO, rate >= NAMES_PER_SECOND
    show = lambda xs: " ".join(f"{x:.3f}" for x in xs)  # noqa: E731
    print(f"1-min load average before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f}; runs: {args.runs}")
    print(f"charlstm generate --n 20   : {show(small)} s, median {statistics.median(small):.3f} s")
    print(f'python -c "import keras"   : {show(keras)} s, median {statistics.median(keras):.3f} s')
    verdict = {True: "met", False: "MISSED"}
    print(f"start-up ratio             : {ratio:.3f} (target <= {START_RATIO}): {verdict[ok_start]}")
    print(f"charlstm generate --n {args.n}: {show(large)} s, median {statistics.median(large):.3f} s")
    print(
        f"throughput                 : {rate:,.0f} names/s, start-up included "
        f"(target >= {NAMES_PER_SECOND:,}): {verdict[ok_rate]}"
    )
    ok_constrained = True
    for command, times in constrained.items():
        ok = statistics.median(times) <= CONSTRAINED_SECONDS
        ok_constrained &= ok
        print(f"charlstm {command}: {show(times)} s, median {statistics.median(times):.3f} s "
              f"(target <= {CONSTRAINED_SECONDS} s): {verdict[ok]}")  # fmt: skip
    if "--tag" not in " ".join(constrained):
        print("(the bundled model has no tags: timed --contains or without --tag male)")
    return 0 if ok_start and ok_rate and ok_constrained else 1


if __name__ == "__main__":
    sys.exit(main())
