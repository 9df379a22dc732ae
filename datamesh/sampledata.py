"""The sample data set behind `invoke seed`: deterministic, streamed, as Apache Arrow record batches.

One Dataset(seed, scale) is the same bytes on any machine and any day (dates hang off the fixed
ANCHOR), so a seeded platform can be checked against it. Tables come in fixed chunks of CHUNK rows,
each computed on its own, so memory stays flat as the scale grows; the same batches become
PostgreSQL COPY input (csv_chunks) and the data lake's Parquet files (write_parquet).

How rows hang together: customers' columns are a hash of (seed, customer_id), so any table can
recompute a customer's email or created_at without keeping the customers; customers sign up in
id order. Orders pick customers by weight (spend propensity x segment x tenure), dated between
the signup and ANCHOR. A SHARE of the leads carry a customer's email (each customer at most once,
through a fixed permutation) and precede that signup by 1-120 days; the rest are strangers whose
emails, without a dot in the local part, no customer has. Leads take a campaign running near
their date.
"""

from __future__ import annotations

import datetime
import math
import numbers
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from datamesh import samplepools as P

VERSION = 1
ANCHOR = datetime.date(2026, 11, 30)
CHUNK = 65_536
SHARE = (32, 100)                       # leads that carry a customer's email (and precede them)
DAY = 86_400
END = (ANCHOR - datetime.date(1970, 1, 1)).days          # ANCHOR as days since the epoch
START = END - 730                                        # the first day of the data set
ROWS = {"customers": 10_000, "orders": 50_000, "campaigns": 60, "leads": 20_000}


@dataclass(frozen=True)
class Table:
    name: str
    domain: str
    database: str
    key: str
    columns: tuple[str, ...]
    schema: pa.Schema


def _table(name, domain, *fields) -> Table:
    """Columns, names and order, as in files/sql/<domain>_db.sql; NOT NULL there is non-nullable here."""
    schema = pa.schema([pa.field(n, t, nullable=n in ("country", "end_date")) for n, t in fields])
    return Table(name, domain, f"{domain}_db", fields[0][0], tuple(schema.names), schema)


_ID, _TEXT, _TS, _DATE, _MONEY = P.ID, P.TEXT, P.TS, P.DATE, P.MONEY
TABLES = {t.name: t for t in (
    _table("customers", "sales", ("customer_id", _ID), ("customer_name", _TEXT), ("email", _TEXT),
           ("country", _TEXT), ("segment", _TEXT), ("created_at", _TS)),
    _table("orders", "sales", ("order_id", _ID), ("customer_id", _ID), ("order_date", _DATE),
           ("total_amount", _MONEY), ("status", _TEXT), ("created_at", _TS)),
    _table("campaigns", "marketing", ("campaign_id", _ID), ("campaign_name", _TEXT), ("channel", _TEXT),
           ("budget", _MONEY), ("start_date", _DATE), ("end_date", _DATE), ("created_at", _TS)),
    _table("leads", "marketing", ("lead_id", _ID), ("email", _TEXT), ("source", _TEXT),
           ("campaign_id", _ID), ("status", _TEXT), ("created_at", _TS)),
)}


class Dataset:
    """The sample data set for one seed (any non-negative int) and scale (rows per table, linear)."""

    def __init__(self, seed: int = 42, scale: float = 1.0):
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"The seed must be a non-negative whole number, not {seed!r}.")
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"The scale must be a number above 0 (1 is about 10,000 customers), not {scale!r}.")
        self.seed, self.scale = int(seed), float(scale)
        self.sizes = {name: max(1, int(base * self.scale + 0.5)) for name, base in ROWS.items()}

    @property
    def fingerprint(self) -> str:
        scale = f"{self.scale:.0f}" if self.scale.is_integer() else repr(self.scale)
        return f"v{VERSION} seed={self.seed} scale={scale}"

    def __repr__(self) -> str:
        return f"Dataset({self.fingerprint})"

    def rows(self, table: str) -> int:
        return self.sizes[self._check(table)]

    def batches(self, table: str) -> Iterator[pa.RecordBatch]:
        """The table's rows in chunks of CHUNK, each computed on its own (the same on every call)."""
        make, schema, total = getattr(self, "_" + self._check(table)), TABLES[table].schema, self.rows(table)
        for chunk, lo in enumerate(range(0, total, CHUNK)):
            yield pa.RecordBatch.from_arrays(make(lo, min(lo + CHUNK, total), chunk), schema=schema)

    def _check(self, table: str) -> str:
        if table not in TABLES:
            raise ValueError(f"There is no sample table {table!r}; the tables are {', '.join(TABLES)}.")
        return table

    def _rng(self, table: str, chunk: int) -> np.random.Generator:
        """Each chunk its own stream, so chunks are independent of one another and of the chunk size."""
        entropy = [self.seed, list(TABLES).index(table), chunk]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))

    def _hash(self, salt: int, ids: np.ndarray) -> np.ndarray:
        """Uniform [0, 1) per id, a pure function of (seed, salt, id): customers' own columns."""
        key = np.random.SeedSequence([self.seed, 99, salt]).generate_state(1, np.uint64)[0]
        return (P.mix(ids.astype(np.uint64) ^ key) >> np.uint64(11)) * 2.0**-53

    def _signup(self, ids: np.ndarray) -> np.ndarray:
        """Customers' created_at in seconds: in id order, evenly over the two years."""
        u = (ids - 1 + self._hash(1, ids)) / self.sizes["customers"]
        first, last = (START + 2) * DAY, (END - 1) * DAY
        return first + np.floor((last - first) * u).astype(np.int64)

    def _segment(self, ids: np.ndarray) -> np.ndarray:
        return P.pick(P.SEGMENT[1], self._hash(2, ids))

    def _email(self, ids: np.ndarray) -> pa.Array:
        """first.last<id>@domain: unique because the id ends the local part."""
        first, last = self._names(ids)
        return P.join(P.FIRST_EMAIL.take(first), ".", P.LAST_EMAIL.take(last), pc.cast(pa.array(ids), pa.string()),
                      "@", P.DOMAIN[0].take(P.pick(P.DOMAIN[1], self._hash(5, ids))))

    def _names(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return tuple(np.floor(self._hash(s, ids) * len(p)).astype(np.int64) for s, p in ((3, P.FIRST), (4, P.LAST)))

    def _customers(self, lo: int, hi: int, chunk: int) -> list[pa.Array]:
        ids = np.arange(lo + 1, hi + 1, dtype=np.int64)
        first, last = self._names(ids)
        country = self._hash(6, ids)
        unknown = country < 0.02
        return [pa.array(ids, _ID), P.join(P.FIRST.take(first), " ", P.LAST.take(last)), self._email(ids),
                P.COUNTRY[0].take(pa.array(P.pick(P.COUNTRY[1], (country - 0.02) / 0.98), mask=unknown)),
                P.SEGMENT[0].take(self._segment(ids)), P.timestamps(self._signup(ids))]

    @cached_property
    def _buyers(self) -> np.ndarray:
        """Customers' cumulative share as buyers: a lognormal propensity x segment x tenure."""
        ids = np.arange(1, self.sizes["customers"] + 1, dtype=np.int64)
        u1, u2 = self._hash(7, ids), self._hash(8, ids)
        propensity = np.exp(0.9 * np.sqrt(-2 * np.log1p(-u1)) * np.cos(2 * np.pi * u2))
        weight = propensity * np.take(P.SEGMENT_ORDERS, self._segment(ids)) * (END * DAY - self._signup(ids))
        return np.cumsum(weight) / weight.sum()

    def _orders(self, lo: int, hi: int, chunk: int) -> list[pa.Array]:
        rng, n = self._rng("orders", chunk), hi - lo
        customer = P.pick(self._buyers, rng.random(n)) + 1
        signup = self._signup(customer)
        placed = signup + np.floor(rng.random(n) ** 1.3 * (END * DAY - signup)).astype(np.int64)  # keener when new
        age = END - placed // DAY
        status = P.pick(P.cdf(P.ORDER_STATUS_BY_AGE)[np.where(age <= 3, 0, np.where(age <= 14, 1, 2))], rng.random(n))
        spend = np.exp(rng.normal(np.log(45.0), 0.85, n)) * np.take(P.SEGMENT_AMOUNT, self._segment(customer))
        cents = np.maximum(np.rint(spend * 100), 99).astype(np.int64)
        return [pa.array(np.arange(lo + 1, hi + 1, dtype=np.int32)), pa.array(customer.astype(np.int32)),
                pa.array((placed // DAY).astype(np.int32), _DATE), P.money(cents), P.ORDER_STATUS.take(status),
                P.timestamps(placed)]

    @cached_property
    def _campaign_plan(self) -> dict[str, np.ndarray]:
        """All campaigns at once (a few per month): in start order, each 14-90 days, the last still running."""
        rng, n = self._rng("campaigns", 0), self.sizes["campaigns"]
        start = START + 30 + np.floor((np.arange(n) + rng.random(n)) / n * (730 - 44)).astype(np.int64)
        end = start + np.take(np.array(P.CAMPAIGN_DAYS)[:, 0], P.pick(P.DURATION[1], rng.random(n))) - 1
        channel = P.pick(P.CHANNEL[1], rng.random(n))
        median = np.take([c[2] for c in P.CHANNELS], channel)
        budget = np.maximum(np.rint(median * rng.lognormal(0, 0.5, n) / 100), 1).astype(np.int64) * 10_000
        created = (start - rng.integers(3, 31, n)) * DAY + rng.integers(8 * 3600, 18 * 3600, n)
        return {"start": start, "end": end, "channel": channel, "budget": budget, "created": created}

    def _campaigns(self, lo: int, hi: int, chunk: int) -> list[pa.Array]:
        plan = {k: v[lo:hi] for k, v in self._campaign_plan.items()}
        names = []
        for cid, day, channel in zip(range(lo + 1, hi + 1), plan["start"].tolist(), plan["channel"].tolist()):
            date = datetime.date(1970, 1, 1) + datetime.timedelta(days=day)
            names.append(f"{P.THEMES[date.month - 1]} {date.year} {P.CHANNELS[channel][0].title()} #{cid}")
        return [pa.array(np.arange(lo + 1, hi + 1, dtype=np.int32)), pa.array(names),
                P.CHANNEL[0].take(plan["channel"]), P.money(plan["budget"]),
                pa.array(plan["start"].astype(np.int32), _DATE),
                pa.array(plan["end"].astype(np.int32), _DATE, mask=plan["end"] >= END), P.timestamps(plan["created"])]

    def _leads(self, lo: int, hi: int, chunk: int) -> list[pa.Array]:
        rng, n = self._rng("leads", chunk), hi - lo
        k_lo, k_hi = lo * SHARE[0] // SHARE[1], hi * SHARE[0] // SHARE[1]
        order = rng.permutation(n)                     # the first k_hi - k_lo positions are customers
        known = np.zeros(n, dtype=bool)
        known[order[:k_hi - k_lo]] = True
        customers = self.sizes["customers"]            # k -> customer through a fixed permutation
        step = next(a for a in range(int(customers * 0.618) | 1, 2 * customers + 2) if math.gcd(a, customers) == 1)
        customer = (np.arange(k_lo, k_hi) * step + self.seed % customers) % customers + 1
        signup = self._signup(customer)
        before = DAY + np.floor(rng.random(len(customer)) * (np.minimum(120 * DAY, signup - START * DAY) - DAY))
        created = np.empty(n, dtype=np.int64)
        created[order[:len(customer)]] = signup - before.astype(np.int64)
        strangers, others = order[len(customer):], n - len(customer)
        created[strangers] = START * DAY + np.floor((END - START) * DAY * rng.random(others) ** 0.8).astype(np.int64)
        first, last = (rng.integers(0, len(pool), others) for pool in (P.FIRST, P.LAST))
        stranger_ids = pc.cast(pa.array(lo + 1 + strangers), pa.string())
        stranger_mail = P.join(P.FIRST_EMAIL.take(first), P.LAST_EMAIL.take(last), stranger_ids, "@",
                              P.DOMAIN[0].take(P.pick(P.DOMAIN[1], rng.random(others))))
        where = np.empty(n, dtype=np.int64)            # row -> position in [customer emails, stranger emails]
        where[order] = np.arange(n)
        email = pa.concat_arrays([self._email(customer), stranger_mail]).take(where)
        age = END - created // DAY
        kind = np.where(known, 0, np.where(age < 30, 1, 2))
        status = P.pick(P.cdf([P.LEAD_STATUS_CUSTOMER] + P.LEAD_STATUS_BY_AGE)[kind], rng.random(n))
        campaign = self._campaign_near(created // DAY, rng)
        source = np.where(rng.random(n) < 0.65, P.CHANNEL_SOURCE[self._campaign_plan["channel"][campaign]],
                          P.pick(P.SOURCE[1], rng.random(n)))
        return [pa.array(np.arange(lo + 1, hi + 1, dtype=np.int32)), email, P.SOURCE[0].take(source),
                pa.array((campaign + 1).astype(np.int32)), P.LEAD_STATUS.take(status), P.timestamps(created)]

    def _campaign_near(self, day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Index of a campaign running on that day, picked among the four started last (else the nearest)."""
        plan = self._campaign_plan
        latest = np.searchsorted(plan["start"], day, side="right") - 1
        candidates = np.maximum(latest[:, None] - np.arange(4), 0)
        running = (plan["start"][candidates] <= day[:, None]) & (day[:, None] <= plan["end"][candidates])
        return candidates[np.arange(len(day)), np.argmax(running + rng.random(candidates.shape) * 0.5, axis=1)]


def _whole_seconds(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Timestamps as whole seconds, so CSV says `2025-03-01 10:00:00` (no `.000`)."""
    columns = [c.cast(pa.timestamp("s")) if pa.types.is_timestamp(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def csv_chunks(batches: Iterable[pa.RecordBatch], header: bool = False) -> Iterator[bytes]:
    """CSV bytes per batch for `COPY t (columns) FROM STDIN WITH (FORMAT csv)`: text quoted, NULL empty."""
    for i, batch in enumerate(batches):
        sink = pa.BufferOutputStream()
        options = pcsv.WriteOptions(include_header=header and i == 0, quoting_header="none", batch_size=8192)
        pcsv.write_csv(_whole_seconds(batch), sink, options)
        yield sink.getvalue().to_pybytes()


def write_parquet(batches: Iterable[pa.RecordBatch], path: str | Path, schema: pa.Schema | None = None) -> int:
    """One Parquet file, a row group per batch; returns the rows written. Empty input needs the schema."""
    rows, writer = 0, None
    try:
        for batch in batches:
            if writer is None:
                writer = pq.ParquetWriter(str(path), schema or batch.schema)
            writer.write_batch(batch, row_group_size=max(len(batch), 1))
            rows += len(batch)
        if writer is None:
            if schema is None:
                raise ValueError(f"No batches to write to {path} and no schema to write an empty file with.")
            writer = pq.ParquetWriter(str(path), schema)
    finally:
        if writer is not None:
            writer.close()
    return rows
