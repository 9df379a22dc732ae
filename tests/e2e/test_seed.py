"""`invoke seed` as a user runs it, on the joined testbed: after `invoke up`, the real command
loads PostgreSQL, the data lake and Hive through the API server's port-forwards, and every copy
of a table holds the same rows. The steps' own edge cases are in test_seed_postgres.py and
test_seed_lake.py."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from datamesh import probes, sampledata
from tests.e2e.conftest import sql, trino

SCALE = "0.2"  # 2k customers, 10k orders: the same code paths as scale 1, in seconds


@pytest.fixture(scope="module")
def seeded(joined, datamesh):
    run = datamesh("seed", "--inventory", "testbed", "--scale", SCALE, "--reset", "--yes")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


@pytest.fixture(scope="module")
def data() -> sampledata.Dataset:
    return sampledata.Dataset(seed=42, scale=float(SCALE))


ENDPOINT = {"sales": "postgres-sales", "marketing": "postgres-marketing"}


def test_seed_loads_every_table_and_reports_it_like_up(seeded, data):
    assert seeded.totals["failed"] == 0
    steps = {role["name"]: role for role in seeded.report["roles"]}
    assert list(steps) == ["postgres", "lake", "hive", "dbt", "docs"]
    loaded = {o["name"] for o in steps["postgres"]["objects"]}
    assert loaded == set(sampledata.TABLES)


def test_every_copy_of_a_table_holds_the_same_rows(seeded, reach, data):
    bucket = reach.inventory["minio"]["bucket"]
    login = reach.login("minio")
    with reach.open("minio") as (host, port):
        s3 = probes.s3_client(f"{host}:{port}", login.user, login.password)
        lake = {}
        for name, table in sampledata.TABLES.items():
            csv = s3.get_object(bucket, f"raw/{table.domain}/{name}.csv")
            lines = csv.read().count(b"\n")
            csv.close()
            parquet = s3.get_object(bucket, f"raw/{table.domain}/{name}/part-00000.parquet")
            rows = pq.read_metadata(io.BytesIO(parquet.read())).num_rows
            parquet.close()
            lake[name] = (lines - 1, rows)  # the CSV has a header line
    for name, table in sampledata.TABLES.items():
        [(postgres,)] = sql(reach, ENDPOINT[table.domain], f"SELECT count(*) FROM {name}")
        [[hive]] = trino(reach, f"SELECT count(*) FROM hive.raw.{name}")
        assert postgres == hive == data.rows(name) == lake[name][0] == lake[name][1], name


def test_a_second_seed_changes_nothing(seeded, datamesh):
    again = datamesh("seed", "--inventory", "testbed", "--scale", SCALE)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.totals["changed"] == 0
    kept = [o for role in seeded.report["roles"] for o in role["objects"] if o["action"] != "delete"]
    assert again.totals["ok"] == len(kept)  # what the first run deleted (leftovers it cleared) is not there


def test_every_order_has_its_customer(seeded, reach):
    [(orphans,)] = sql(reach, "postgres-sales",
                       "SELECT count(*) FROM orders o LEFT JOIN customers c USING (customer_id) WHERE c.customer_id IS NULL")
    assert orphans == 0


def test_a_quarter_to_two_fifths_of_the_leads_become_customers_later(seeded, reach):
    [[converted, leads]] = trino(reach, """
        SELECT count(DISTINCT l.lead_id) FILTER (WHERE c.customer_id IS NOT NULL), count(DISTINCT l.lead_id)
        FROM marketing.public.leads l
        LEFT JOIN sales.public.customers c ON c.email = l.email AND l.created_at < c.created_at""")
    assert 0.25 <= converted / leads <= 0.40


def test_a_users_row_makes_seed_refuse_and_reset_replaces_it(seeded, reach, datamesh):
    sql(reach, "postgres-marketing",
        "INSERT INTO campaigns (campaign_name, channel, budget, start_date) VALUES ('my own', 'email', 10, '2026-01-01')")
    refused = datamesh("seed", "--inventory", "testbed", "--scale", SCALE, "--only", "postgres")
    assert refused.returncode == 2
    assert "marketing_db.campaigns" in refused.stderr and "1 row" in refused.stderr and "--reset" in refused.stderr
    assert sql(reach, "postgres-marketing", "SELECT count(*) FROM campaigns WHERE campaign_name = 'my own'") == [(1,)]
    reset = datamesh("seed", "--inventory", "testbed", "--scale", SCALE, "--only", "postgres", "--reset", "--yes")
    assert reset.returncode == 0, reset.stdout[-2000:] + reset.stderr[-2000:]
    assert sql(reach, "postgres-marketing", "SELECT count(*) FROM campaigns WHERE campaign_name = 'my own'") == [(0,)]
