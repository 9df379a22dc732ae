"""Seed step "lake": the sample data set's raw files in the data lake bucket.

Each table of the data set becomes two objects in the bucket of `minio.bucket`:

- `raw/<domain>/<table>.csv` with a header row: the paths users' notebooks know
  (raw/sales/customers.csv, raw/sales/orders.csv, raw/marketing/leads.csv, raw/marketing/campaigns.csv);
- `raw/<domain>/<table>/part-00000.parquet`: the copy the Hive table hive.raw.<table> reads (the
  hive-metastore role's seed step), which reads every file under that prefix.

Both files of a table are written in one pass over the generated batches into a temporary folder
(memory stays flat at any scale), then hashed. An object whose size and stored checksum (user
metadata written with it: its sha256 and the data set's fingerprint) match the file is left alone
("ok", nothing sent); any other is uploaded ("changed", multipart above PART_SIZE). A second run
with the same seed and scale therefore uploads nothing.

The Parquet prefix of a table must hold only the file seed writes, or the Hive table would count
someone else's rows: other objects there make the step refuse before it writes anything, naming
the prefix, unless the run resets (`ctx.reset`), which deletes them. Directory markers (empty keys
ending in "/", which S3A and the metastore may create) are not data and are left alone.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from datamesh import lake, sampledata
from datamesh.lake import s3_errors
from datamesh.errors import DatameshError
from datamesh.role import ObjectResult

STEP = "lake"
NEEDS = ["minio"]

PART_SIZE = 8 * 1024 * 1024         # multipart above this size; each of 3 parallel parts is held in memory
SHA256 = "datamesh-sha256"          # user metadata: sent and read back as x-amz-meta-datamesh-sha256
FINGERPRINT = "datamesh-fingerprint"  # x-amz-meta-datamesh-fingerprint: the data set (seed, scale, generator)
PARQUET_PART = "part-00000.parquet"
CONTENT_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
HASH_CHUNK = 1024 * 1024


# -- where things go (pure) ---------------------------------------------------------------------

def csv_key(table) -> str:
    return f"raw/{table.domain}/{table.name}.csv"


def parquet_prefix(table) -> str:
    """The folder the Hive table reads whole: it holds seed's Parquet file(s) and nothing else."""
    return f"raw/{table.domain}/{table.name}/"


def parquet_key(table) -> str:
    return parquet_prefix(table) + PARQUET_PART


def keys(table) -> list[str]:
    return [csv_key(table), parquet_key(table)]


@dataclass(frozen=True)
class Live:
    """What a HEAD of an object tells: its size and the user metadata seed stored with it."""

    size: int
    sha256: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class Generated:
    key: str
    path: Path
    size: int
    sha256: str
    content_type: str


def up_to_date(live: Live | None, size: int, sha256: str, fingerprint: str) -> bool:
    """True when the live object is the generated file: same size, same checksum, same data set."""
    return live is not None and live.size == size and live.sha256 == sha256 and live.fingerprint == fingerprint


def live_from_metadata(size: int, metadata) -> Live:
    """A Live from a HEAD answer's size and headers (user metadata as x-amz-meta-*, any case)."""
    lowered = {str(k).lower(): v for k, v in (metadata or {}).items()}
    return Live(size, lowered.get(f"x-amz-meta-{SHA256}"), lowered.get(f"x-amz-meta-{FINGERPRINT}"))


def is_marker(key: str, size: int) -> bool:
    """An empty "folder" object (key ending in /): not data, and readers of the prefix skip it."""
    return key.endswith("/") and size == 0


def foreign(prefix: str, listed: Iterable[tuple[str, int]], ours: Iterable[str]) -> list[str]:
    """The keys under `prefix` (name, size) that seed did not write, directory markers aside."""
    mine = set(ours)
    return sorted(key for key, size in listed
                  if key.startswith(prefix) and key not in mine and not is_marker(key, size))


def refusal(bucket: str, found: dict[str, list[str]]) -> str:
    """One sentence for the prefixes holding foreign objects: the first named with its count."""
    prefix, keys_found = next(iter(found.items()))
    shown = ", ".join(keys_found[:3]) + (", ..." if len(keys_found) > 3 else "")
    more = f" (and {len(found) - 1} more prefix(es) of hive.raw tables)" if len(found) > 1 else ""
    return (f"s3://{bucket}/{prefix} holds {len(keys_found)} object(s) seed did not write ({shown}){more}, and the "
            f"Hive table reads that whole prefix: move them elsewhere, or run seed with --reset to delete them.")


# -- generating the files -----------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_files(batches: Iterable, csv_path: Path, parquet_path: Path, on_rows=None, schema=None) -> int:
    """Write the CSV (header first) and the Parquet copy of one table in one pass over its batches;
    returns the rows. `on_rows(n)` is told each batch's rows as it goes."""
    rows = 0
    with csv_path.open("wb") as csv_out:
        def tee() -> Iterator:
            nonlocal rows
            for batch in batches:
                for chunk in sampledata.csv_chunks([batch], header=rows == 0):
                    csv_out.write(chunk)
                rows += batch.num_rows
                if on_rows:
                    on_rows(batch.num_rows)
                yield batch

        written = sampledata.write_parquet(tee(), parquet_path, schema)
    if written != rows:
        raise DatameshError(f"the Parquet writer wrote {written} rows of {parquet_path.name}, the CSV {rows}: "
                            "a bug in datamesh/sampledata.py.")
    return rows


def generate(ctx, table, folder: Path) -> list[Generated]:
    """Both files of a table in `folder`, with their sizes and checksums; progress in rows."""
    csv_path, parquet_path = folder / f"{table.name}.csv", folder / f"{table.name}.parquet"
    progress = ctx.progress(f"{parquet_prefix(table)[:-1]} (csv, parquet)", ctx.data.rows(table.name))
    write_files(ctx.data.batches(table.name), csv_path, parquet_path, progress.add, table.schema)
    progress.finish()
    return [Generated(csv_key(table), csv_path, csv_path.stat().st_size, sha256_of(csv_path), CONTENT_TYPES["csv"]),
            Generated(parquet_key(table), parquet_path, parquet_path.stat().st_size, sha256_of(parquet_path),
                      CONTENT_TYPES["parquet"])]


# -- the object store ---------------------------------------------------------------------------

def stat(s3, bucket: str, key: str) -> Live | None:
    found = lake.stat(s3, bucket, key)
    return None if found is None else live_from_metadata(found.size, found.metadata)


def put(s3, bucket: str, item: Generated, fingerprint: str) -> None:
    with s3_errors(bucket, item.key, "upload"):
        s3.fput_object(bucket, item.key, str(item.path), content_type=item.content_type,
                       metadata={SHA256: item.sha256, FINGERPRINT: fingerprint}, part_size=PART_SIZE)


def clear_prefixes(ctx, s3, bucket: str, tables) -> list[ObjectResult]:
    """Refuse (or, resetting, delete) what does not belong in the tables' Parquet prefixes."""
    found: dict[str, list[str]] = {}
    for table in tables:
        prefix = parquet_prefix(table)
        with s3_errors(bucket, prefix, "list"):
            listed = [(o.object_name, o.size or 0) for o in s3.list_objects(bucket, prefix, recursive=True)]
        others = foreign(prefix, listed, [parquet_key(table)])
        if others:
            found[prefix] = others
    if found and not ctx.reset:
        raise DatameshError(refusal(bucket, found))
    deleted = []
    for others in found.values():
        for key in others:
            with s3_errors(bucket, key, "delete"):
                s3.remove_object(bucket, key)
            deleted.append(ObjectResult("Object", bucket, key, "changed", "delete"))
    return deleted


def seed(ctx) -> list[ObjectResult]:
    fingerprint = ctx.data.fingerprint
    tables = list(sampledata.TABLES.values())
    results: list[ObjectResult] = []
    with lake.bucket(ctx.reach) as (s3, bucket):
        results += clear_prefixes(ctx, s3, bucket, tables)
        with tempfile.TemporaryDirectory(prefix="datamesh-lake-") as tmp:
            for table in tables:
                for item in generate(ctx, table, Path(tmp)):
                    if up_to_date(stat(s3, bucket, item.key), item.size, item.sha256, fingerprint):
                        results.append(ObjectResult("Object", bucket, item.key, "ok"))
                    else:
                        put(s3, bucket, item, fingerprint)
                        results.append(ObjectResult("Object", bucket, item.key, "changed", "upload"))
                    os.unlink(item.path)
    return results
