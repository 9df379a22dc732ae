"""The lake and hive seed steps on the joined testbed: raw files in the real S3 server, external Hive
tables over them made through the real Trino and Hive Metastore, everything reached through the API
server's port-forward (datamesh/endpoints.py) with the login from its Secret.

The tests run in order and leave the data lake seeded with the default data set (seed 42, scale 1),
as `invoke seed` would; what they add besides (a foreign object, a wrong table) they remove.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import time
import uuid

import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from datamesh import probes, sampledata
from datamesh.endpoints import Endpoints
from datamesh.errors import DatameshError
from datamesh.report import Reporter
from datamesh.role import load_module
from datamesh.seed import Context
from datamesh.trino import access

lake = load_module("minio", "seed")
hive = load_module("hive-metastore", "seed")

SEED, SCALE, OTHER_SCALE = 42, 1.0, 3.0  # at 3, orders.csv (9 MB) goes up in two parts
TABLES = list(sampledata.TABLES.values())


@pytest.fixture(scope="module")
def data() -> sampledata.Dataset:
    return sampledata.Dataset(seed=SEED, scale=SCALE)


@pytest.fixture(scope="module")
def context(reach):
    def make(data: sampledata.Dataset, reset: bool = False) -> Context:
        return Context(data=data, reach=reach, reporter=Reporter(io.StringIO()), reset=reset)
    return make


@pytest.fixture(scope="module")
def bucket(reach) -> str:
    return reach.inventory["minio"]["bucket"]


@pytest.fixture(scope="module")
def s3(reach):
    """A minio client through its own port-forward, for looking behind the steps' backs."""
    login = reach.login("minio")
    with reach.open("minio") as (host, port):
        yield probes.s3_client(f"{host}:{port}", login.user, login.password)


@pytest.fixture(scope="module")
def query(reach):
    login = access(reach)
    with reach.open("trino") as (host, port):
        yield lambda sql: login.query(login.url(host, port), sql)


@pytest.fixture(scope="module")
def seeded(context, data):
    """The lake and hive steps run once with the default data set; their results and timings."""
    ctx = context(data)
    t0 = time.monotonic()
    lake_results = lake.seed(ctx)
    t1 = time.monotonic()
    hive_results = hive.seed(ctx)
    t2 = time.monotonic()
    print(f"\nfirst lake step {t1 - t0:.1f}s, hive step {t2 - t1:.1f}s; rows: "
          + ", ".join(f"{t.name}={data.rows(t.name)}" for t in TABLES)
          + "; " + ", ".join(f"{r.name} {r.status}" for r in lake_results + hive_results))
    return lake_results, hive_results


def objects(s3, bucket: str) -> dict[str, tuple]:
    """key -> (etag, last modified, size) of every object the lake step owns."""
    out = {}
    for table in TABLES:
        for key in lake.keys(table):
            st = s3.stat_object(bucket, key)
            out[key] = (st.etag, st.last_modified, st.size)
    return out


def counts(query) -> dict[str, int]:
    return {t.name: query(f"SELECT count(*) FROM hive.raw.{t.name}")[0][0] for t in TABLES}


def statuses(results) -> dict[str, str]:
    return {r.name: r.status for r in results}


# -- the lake ---------------------------------------------------------------------------------

def test_the_raw_files_hold_the_data_sets_rows(seeded, s3, bucket, data, tmp_path):
    lake_results, _ = seeded
    assert {r.name for r in lake_results if r.action != "delete"} == {k for t in TABLES for k in lake.keys(t)}
    assert all(r.kind == "Object" and r.namespace == bucket for r in lake_results)
    for table in TABLES:
        csv_path, parquet_path = tmp_path / f"{table.name}.csv", tmp_path / f"{table.name}.parquet"
        s3.fget_object(bucket, lake.csv_key(table), str(csv_path))
        s3.fget_object(bucket, lake.parquet_key(table), str(parquet_path))
        frame = pyarrow.csv.read_csv(csv_path)
        assert frame.num_rows == data.rows(table.name), table.name
        assert frame.column_names == table.schema.names  # the header row
        back = pq.read_table(parquet_path)
        assert back.num_rows == data.rows(table.name), table.name
        assert back.schema.remove_metadata().equals(table.schema.remove_metadata()), table.name
        csv_path.unlink()
        parquet_path.unlink()


def test_the_objects_carry_their_checksum_and_the_data_sets_fingerprint(seeded, s3, bucket, data):
    for table in TABLES:
        st = s3.stat_object(bucket, lake.parquet_key(table))
        live = lake.live_from_metadata(st.size, st.metadata)
        assert live.fingerprint == data.fingerprint and len(live.sha256 or "") == 64


def test_a_second_run_uploads_nothing(seeded, context, data, s3, bucket):
    before = objects(s3, bucket)
    t0 = time.monotonic()
    results = lake.seed(context(data))
    print(f"\nno-op lake step {time.monotonic() - t0:.1f}s")
    assert set(statuses(results).values()) == {"ok"} and len(results) == 2 * len(TABLES)
    assert objects(s3, bucket) == before  # same ETags, same last-modified: nothing was written


# -- the Hive tables --------------------------------------------------------------------------

def test_hive_raw_counts_equal_the_data_set(seeded, query, data):
    _, hive_results = seeded
    assert {r.name for r in hive_results if r.kind == "Table"} == {t.name for t in TABLES}
    assert counts(query) == {t.name: data.rows(t.name) for t in TABLES}


def test_the_tables_columns_and_locations_are_the_parquet_schema(seeded, query, bucket):
    for table in TABLES:
        live = [tuple(r) for r in query(
            "SELECT column_name, data_type FROM hive.information_schema.columns "
            f"WHERE table_schema = 'raw' AND table_name = '{table.name}' ORDER BY ordinal_position")]
        assert live == hive.columns(table.schema), table.name
        shown = query(f"SHOW CREATE TABLE hive.raw.{table.name}")[0][0]
        assert hive.same_location(hive.properties(shown)["external_location"], hive.location(bucket, table))


def test_a_second_hive_run_creates_nothing(seeded, context, data, query):
    before = {t.name: query(f"SHOW CREATE TABLE hive.raw.{t.name}")[0][0] for t in TABLES}
    t0 = time.monotonic()
    results = hive.seed(context(data))
    print(f"\nno-op hive step {time.monotonic() - t0:.1f}s")
    assert set(statuses(results).values()) == {"ok"}
    assert {t.name: query(f"SHOW CREATE TABLE hive.raw.{t.name}")[0][0] for t in TABLES} == before


def test_a_table_of_another_definition_is_replaced_and_its_files_stay(seeded, context, data, query, s3, bucket):
    table = sampledata.TABLES["leads"]
    before = objects(s3, bucket)
    query(f"DROP TABLE hive.raw.{table.name}")
    query(f"CREATE TABLE hive.raw.{table.name} (lead_id integer) "
          f"WITH (external_location = '{hive.location(bucket, table)}', format = 'PARQUET')")
    results = hive.seed(context(data))
    assert statuses(results)[table.name] == "changed"
    assert {s for n, s in statuses(results).items() if n not in (table.name,)} == {"ok"}
    assert objects(s3, bucket) == before  # dropping the external table kept its file
    assert counts(query)[table.name] == data.rows(table.name)


# -- the prefix the Hive table reads ----------------------------------------------------------

def test_a_foreign_object_in_a_parquet_prefix_is_refused_and_reset_removes_it(seeded, context, data, s3, bucket,
                                                                             query):
    table = sampledata.TABLES["orders"]
    prefix = lake.parquet_prefix(table)
    key = f"{prefix}foreign-{uuid.uuid4().hex[:8]}.parquet"
    s3.put_object(bucket, key, io.BytesIO(b"not ours"), 8)
    try:
        before = objects(s3, bucket)
        with pytest.raises(DatameshError) as refused:
            lake.seed(context(data))
        message = str(refused.value)
        assert f"s3://{bucket}/{prefix} holds 1 object(s)" in message and "--reset" in message
        assert objects(s3, bucket) == before  # refused before writing anything
        assert [o.object_name for o in s3.list_objects(bucket, prefix, recursive=True)
                if not lake.is_marker(o.object_name, o.size or 0)] == sorted([key, lake.parquet_key(table)])

        results = lake.seed(context(data, reset=True))
        deleted = [r for r in results if r.action == "delete"]
        assert [(r.name, r.status) for r in deleted] == [(key, "changed")]
        assert {r.status for r in results if r.action != "delete"} == {"ok"}
        assert key not in {o.object_name for o in s3.list_objects(bucket, prefix, recursive=True)}
        assert counts(query)[table.name] == data.rows(table.name)
    finally:
        with contextlib.suppress(Exception):
            s3.remove_object(bucket, key)


# -- another data set -------------------------------------------------------------------------

def test_another_scale_replaces_the_files_and_the_counts_follow(seeded, context, data, s3, bucket, query):
    other = sampledata.Dataset(seed=SEED, scale=OTHER_SCALE)
    assert other.fingerprint != data.fingerprint
    before = objects(s3, bucket)
    try:
        t0 = time.monotonic()
        lake_results = lake.seed(context(other))
        hive_results = hive.seed(context(other))
        print(f"\nscale {OTHER_SCALE}: lake step {time.monotonic() - t0:.1f}s with hive")
        assert set(statuses(lake_results).values()) == {"changed"}
        assert {r.action for r in lake_results} == {"upload"}
        assert {r.status for r in hive_results if r.kind == "Table"} == {"ok"}  # the same definitions
        after = objects(s3, bucket)
        assert all(after[k][0] != before[k][0] for k in before), "an object kept its ETag"
        orders_csv = lake.csv_key(sampledata.TABLES["orders"])
        assert after[orders_csv][2] > lake.PART_SIZE and after[orders_csv][0].endswith("-2"), after[orders_csv]
        assert counts(query) == {t.name: other.rows(t.name) for t in TABLES}
    finally:  # the default data set again, as the rest of the platform expects
        lake.seed(context(data))
        hive.seed(context(data))
    assert counts(query) == {t.name: data.rows(t.name) for t in TABLES}


# -- failures, in one sentence ----------------------------------------------------------------

def test_a_missing_bucket_is_named_with_the_next_step(reach, data):
    missing = f"nobucket-{uuid.uuid4().hex[:8]}"
    vars = copy.deepcopy(reach.inventory.vars)
    vars["minio"]["bucket"] = missing
    elsewhere = Endpoints(reach.cluster, dataclasses.replace(reach.inventory, vars=vars))
    ctx = Context(data=data, reach=elsewhere, reporter=Reporter(io.StringIO()))
    with pytest.raises(DatameshError, match=f"the bucket {missing} does not exist .*run `invoke up`"):
        lake.seed(ctx)


def test_hive_counts_other_than_the_data_sets_are_refused_naming_the_table(seeded, context, query):
    bigger = sampledata.Dataset(seed=SEED, scale=OTHER_SCALE)  # the lake still holds scale 1
    with pytest.raises(DatameshError) as refused:
        hive.seed(context(bigger))
    table = TABLES[0]
    assert str(refused.value).startswith(
        f"hive.raw.{table.name} counts {counts(query)[table.name]} rows through Trino, but the data set has "
        f"{bigger.rows(table.name)}")
