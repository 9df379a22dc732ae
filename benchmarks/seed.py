"""Benchmark: the postgres seed step's COPY load against per-row INSERTs of the same rows.

    invoke testbed.up && . .testbed/env && invoke up --inventory testbed
    python -m benchmarks.seed [--scale 1] [--rounds 5]

On the joined testbed's sales_db (customers then orders of the sample data set), into a throwaway
schema made like the real tables (LIKE ... INCLUDING ALL, plus orders' foreign key), dropped at
the end, so the seeded data is untouched:
- COPY: what roles/postgres/seed.py does in its transaction (TRUNCATE, COPY streamed from the
  generator, the sequences, the foreign keys checked set-wise, COMMIT), median of --rounds; and
  the same COPY from CSV made beforehand (the server's share), and the generator alone;
- INSERT, the baseline: one cursor.execute per row in one transaction (foreign key checked per row),
  the rows turned into Python tuples outside the timing;
each directly at the service's in-cluster address (the service testbed resolves it) and through a
port-forward through the API server (Endpoints.open). Prints rows/s and ratios. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
import uuid

import psycopg2
from psycopg2 import sql

from benchmarks import joined
from datamesh import sampledata
from datamesh.endpoints import Login
from datamesh.report import Reporter
from datamesh.role import load_module
from datamesh.seed import Context

ENDPOINT, DATABASE = "postgres-sales", "sales_db"
DIRECT = ("postgres-sales.data-platform.svc.cluster.local", 5432)  # the service testbed's address of it
TABLES = [sampledata.TABLES["customers"], sampledata.TABLES["orders"]]
pg = load_module("postgres", "seed")


def connect(address: tuple[str, int], login: Login, schema: str):
    return psycopg2.connect(host=address[0], port=address[1], user=login.user, password=login.password,
                            dbname=DATABASE, connect_timeout=30, application_name="datamesh benchmark",
                            options=f"-c search_path={schema}")


def empty(cur, triggers: bool = False) -> None:
    """The start of seed_database's load: the tables emptied, and row-by-row foreign key checks off."""
    cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(sql.Identifier(t.name) for t in TABLES)))
    cur.execute("SELECT current_setting('is_superuser') = 'on'")
    if cur.fetchone()[0] and not triggers:
        cur.execute("SET LOCAL session_replication_role = replica")


def copy_load(conn, ctx: Context) -> float:
    """Seconds for seed's load of the tables, in one transaction, as seed_database runs it."""
    start = time.perf_counter()
    with conn.cursor() as cur:
        empty(cur)
        for table in TABLES:
            pg.load(ctx, cur, DATABASE, table)
        pg.check_references(cur, DATABASE, TABLES)
    conn.commit()
    return time.perf_counter() - start


def copy_premade(conn, csv: dict[str, bytes]) -> float:
    """Seconds for the same COPY from CSV made beforehand: the server's share, without the generator."""
    start = time.perf_counter()
    with conn.cursor() as cur:
        empty(cur)
        for table in TABLES:
            copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, FREEZE)").format(
                sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.columns)))
            cur.copy_expert(copy.as_string(cur), io.BytesIO(csv[table.name]), size=pg.COPY_BUFFER)
    conn.commit()
    return time.perf_counter() - start


def insert_load(conn, data: sampledata.Dataset) -> float:
    """Seconds for the same rows by one INSERT each, in one transaction (building the tuples not counted)."""
    spent = 0.0
    with conn.cursor() as cur:
        empty(cur, triggers=True)
        conn.commit()
        for table in TABLES:
            insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(table.columns))).as_string(cur)
            for batch in data.batches(table.name):
                rows = list(zip(*(column.to_pylist() for column in batch.columns)))
                start = time.perf_counter()
                for row in rows:
                    cur.execute(insert, row)
                spent += time.perf_counter() - start
    start = time.perf_counter()
    conn.commit()
    return spent + time.perf_counter() - start


def generate(data: sampledata.Dataset) -> float:
    """Seconds to make the CSV alone (the generator's share of the COPY load)."""
    start = time.perf_counter()
    for table in TABLES:
        reader = pg.Reader(sampledata.csv_chunks(data.batches(table.name)))
        while reader.read(pg.COPY_BUFFER):
            pass
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.seed", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    reach, login = joined.reach(ENDPOINT)
    data = sampledata.Dataset(42, args.scale)
    ctx = Context(data, reach, Reporter(io.StringIO()))
    rows = sum(data.rows(t.name) for t in TABLES)
    schema = f"datamesh_bench_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(connect(DIRECT, login, "public")) as admin:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE SCHEMA {s}; CREATE TABLE {s}.customers (LIKE public.customers INCLUDING ALL); "
                                "CREATE TABLE {s}.orders (LIKE public.orders INCLUDING ALL); ALTER TABLE {s}.orders "
                                "ADD FOREIGN KEY (customer_id) REFERENCES {s}.customers (customer_id)").format(
                                    s=sql.Identifier(schema)))
        try:
            times: dict[str, list[float]] = {"generate": [generate(data) for _ in range(args.rounds)]}
            csv = {t.name: b"".join(sampledata.csv_chunks(data.batches(t.name))) for t in TABLES}
            with reach.open(ENDPOINT) as forwarded, contextlib.ExitStack() as stack:
                conns = {where: stack.enter_context(contextlib.closing(connect(address, login, schema)))
                         for where, address in (("direct", DIRECT), ("forward", forwarded))}
                for _ in range(args.rounds):  # alternated, so neither side gets the warmer server
                    for where, conn in conns.items():
                        times.setdefault(f"copy {where}", []).append(copy_load(conn, ctx))
                        times.setdefault(f"premade {where}", []).append(copy_premade(conn, csv))
                for where, conn in conns.items():
                    times[f"insert {where}"] = [insert_load(conn, data)]
        finally:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

    rate = {name: rows / statistics.median(seconds) for name, seconds in times.items()}
    print(f"scale {args.scale:g}: {rows:,} rows of sales_db (customers {data.rows('customers'):,} + orders "
          f"{data.rows('orders'):,}), {args.rounds} COPY rounds (median), 1 INSERT round, {os.cpu_count()} CPUs")
    print(f"CSV from the generator alone           {rate['generate']:>12,.0f} rows/s")
    print(f"{'rows/s':38} {'direct':>12}   {'forward':>12}   forward's time / direct's")
    for name, label in (("copy", "COPY (seed's load, one transaction)"), ("premade", "  the same COPY from CSV made before"),
                        ("insert", "INSERT per row (one transaction)")):
        direct, forward = rate[f"{name} direct"], rate[f"{name} forward"]
        print(f"{label:38} {direct:>12,.0f}   {forward:>12,.0f}   {direct / forward:5.2f}x")
    print(f"{'COPY / INSERT':38} {rate['copy direct'] / rate['insert direct']:>11.1f}x   "
          f"{rate['copy forward'] / rate['insert forward']:>11.1f}x")
    print(f"targets: COPY >= 200,000 rows/s direct ({'met' if rate['copy direct'] >= 200_000 else 'not met'}), "
          f">= 20x the INSERT baseline ({'met' if rate['copy direct'] >= 20 * rate['insert direct'] else 'not met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
