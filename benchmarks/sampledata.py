"""Benchmark: the sample data generator (datamesh/sampledata.py), as `invoke seed` drives it.

    python -m benchmarks.sampledata [--scale 20] [--seed 42] [--baseline-rows 200000]

Per table, rows/s for generation alone, generation + COPY CSV (csv_chunks), and generation +
Parquet (write_parquet to a temporary folder); then the peak RSS of the whole run so far (memory
must stay flat as the scale grows: the batches stream). Last, a baseline in the same run: the
same rows (up to --baseline-rows per table) turned into Python rows and formatted by Python's csv
module, as a generator without Arrow's C++ writer would, and the ratio of the two. Not a test:
nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import io
import resource
import tempfile
import time
from pathlib import Path

from datamesh import sampledata


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024       # KiB on Linux


def timed(work) -> tuple[float, int]:
    start = time.perf_counter()
    out = work()
    return time.perf_counter() - start, out


def python_csv(batches, limit: int) -> int:
    """The baseline: Python rows through csv.writer, NULL as an empty field, as COPY csv reads."""
    rows, sink = 0, io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    for batch in batches:
        for row in batch.slice(0, limit - rows).to_pylist():
            writer.writerow(["" if v is None else v for v in row.values()])
        rows = min(limit, rows + len(batch))
        sink.seek(0)
        sink.truncate()
        if rows >= limit:
            break
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    args = parser.parse_args()
    data = sampledata.Dataset(seed=args.seed, scale=args.scale)
    print(f"sample data {data.fingerprint}, chunks of {sampledata.CHUNK} rows, RSS at start {rss_mib():.0f} MiB")
    print(f"{'table':<10} {'rows':>10} {'generate':>14} {'+ CSV':>14} {'CSV MiB':>8} {'+ Parquet':>14} "
          f"{'Parquet MiB':>11}")
    csv_rate = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in sampledata.TABLES:
            rows = data.rows(name)
            gen, _ = timed(lambda: sum(len(b) for b in data.batches(name)))
            to_csv, size = timed(lambda: sum(len(c) for c in sampledata.csv_chunks(data.batches(name))))
            path = Path(folder) / f"{name}.parquet"
            to_parquet, _ = timed(lambda: sampledata.write_parquet(data.batches(name), path))
            csv_rate[name] = rows / to_csv
            print(f"{name:<10} {rows:>10,} {rows / gen:>10,.0f} r/s {rows / to_csv:>10,.0f} r/s {size / 2**20:>8.1f} "
                  f"{rows / to_parquet:>10,.0f} r/s {path.stat().st_size / 2**20:>11.1f}")
    total = sum(data.rows(n) for n in sampledata.TABLES)
    print(f"all tables: {total:,} rows; peak RSS {rss_mib():.0f} MiB (before the baseline)")
    print(f"baseline: the same rows as Python rows through the csv module (first {args.baseline_rows:,} per table)")
    for name in sampledata.TABLES:
        seconds, rows = timed(lambda: python_csv(data.batches(name), args.baseline_rows))
        print(f"{name:<10} {rows:>10,} {rows / seconds:>10,.0f} r/s   "
              f"Arrow CSV is {csv_rate[name] * seconds / rows:5.1f}x faster")
    print(f"peak RSS after the baseline {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
