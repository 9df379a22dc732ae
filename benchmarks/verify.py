"""Benchmark: `invoke verify`'s wall time, its checks spread over workers against one process.

    invoke testbed.up && . .testbed/env && invoke up --inventory testbed && invoke seed --inventory testbed
    python -m benchmarks.verify [--rounds 3] [--workers 0]

Runs the whole `invoke verify` as a user does (a new process each time, its start included) on the
joined testbed, alternating `--workers 1` (the baseline: every check in one process) and
`--workers N` (0: one per CPU, at most 4). Prints each run's seconds, the medians and their ratio,
and the checks' counts. The target is under 60 s. Not a test: nothing is asserted.
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

from datamesh import ROOT
from testbed import cluster as testbed


def run_verify(workers: int, report: Path) -> tuple[float, dict]:
    env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig_path()), "DATAMESH_INVENTORY": "testbed",
           "PATH": os.pathsep.join([str(testbed.kubectl_path().parent), os.environ.get("PATH", "")])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "invoke", "verify", "--workers", str(workers), "--report-json",
                           str(report)], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"invoke verify failed (exit {done.returncode}); start the joined testbed, `invoke up` and "
                 f"`invoke seed` first:\n{done.stdout[-2000:]}{done.stderr[-1000:]}")
    return seconds, json.loads(report.read_text())["totals"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="the parallel run's workers (0: one per CPU, at most 4)")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {"one process": [], f"workers {args.workers or 'auto'}": []}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for label, workers in zip(times, (1, args.workers)):
                seconds, totals = run_verify(workers, Path(folder) / "report.json")
                times[label].append(seconds)
                print(f"round {round_ + 1}: {label:<12} {seconds:6.2f} s  {totals}")
    medians = {label: statistics.median(values) for label, values in times.items()}
    baseline, parallel = medians.values()
    print(f"\nmedian of {args.rounds}: " + ", ".join(f"{label} {m:.2f} s" for label, m in medians.items())
          + f"; parallel / one process = {parallel / baseline:.2f}x; target: under 60 s")
    print(f"machine: {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
