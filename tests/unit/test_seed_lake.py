"""The lake and hive seed steps' pure parts: object keys, the upload decision, the prefix check,
the one-pass file writer, the Trino types and the DDL text. No sockets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from datamesh import sampledata
from datamesh.errors import DatameshError
from datamesh.role import load_module

lake = load_module("minio", "seed")
hive = load_module("hive-metastore", "seed")

BUCKET = "datalake"
SCHEMA = pa.schema([
    ("customer_id", pa.int32()), ("customer_name", pa.string()), ("created_at", pa.timestamp("ms")),
    ("birthday", pa.date32()), ("total_amount", pa.decimal128(12, 2)),
])


@dataclass(frozen=True)
class FakeTable:
    name: str
    domain: str
    schema: pa.Schema = SCHEMA


# -- keys and steps ---------------------------------------------------------------------------

def test_the_steps_and_their_needs():
    assert (lake.STEP, lake.NEEDS) == ("lake", ["minio"])
    assert (hive.STEP, hive.NEEDS) == ("hive", ["minio", "hive-metastore", "trino"])


def test_csv_keys_are_the_paths_users_know():
    assert {lake.csv_key(t) for t in sampledata.TABLES.values()} == {
        "raw/sales/customers.csv", "raw/sales/orders.csv", "raw/marketing/leads.csv", "raw/marketing/campaigns.csv"}


def test_each_parquet_file_lies_in_its_tables_own_prefix():
    for table in sampledata.TABLES.values():
        prefix = lake.parquet_prefix(table)
        assert prefix == f"raw/{table.domain}/{table.name}/"
        assert lake.parquet_key(table) == prefix + "part-00000.parquet"
        assert not lake.csv_key(table).startswith(prefix)  # the CSV is not read by the Hive table
        assert hive.location(BUCKET, table) == f"s3a://{BUCKET}/{prefix}"


# -- the upload decision ----------------------------------------------------------------------

SHA = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize("live, expected", [
    (lake.Live(10, SHA, "fp1"), True),
    (None, False),
    (lake.Live(11, SHA, "fp1"), False),               # another size
    (lake.Live(10, "0" * 64, "fp1"), False),          # another checksum
    (lake.Live(10, SHA, "fp2"), False),               # another data set
    (lake.Live(10, None, None), False),               # uploaded by someone else: no metadata of ours
])
def test_an_object_is_uploaded_unless_size_checksum_and_fingerprint_all_match(live, expected):
    assert lake.up_to_date(live, 10, SHA, "fp1") is expected


def test_user_metadata_is_read_whatever_the_header_case():
    live = lake.live_from_metadata(5, {"Content-Type": "text/csv", "X-Amz-Meta-Datamesh-Sha256": SHA,
                                       "x-amz-meta-datamesh-fingerprint": "fp"})
    assert live == lake.Live(5, SHA, "fp")
    assert lake.live_from_metadata(5, None) == lake.Live(5)


# -- the prefix the Hive table reads ----------------------------------------------------------

def test_foreign_objects_are_what_seed_did_not_write_directory_markers_aside():
    prefix = "raw/sales/customers/"
    listed = [(prefix, 0), (prefix + "part-00000.parquet", 100), (prefix + "extra.parquet", 7),
              (prefix + "sub/", 0), (prefix + "sub/x.csv", 3), (prefix + "odd/", 4)]
    assert lake.foreign(prefix, listed, [prefix + "part-00000.parquet"]) == [
        prefix + "extra.parquet", prefix + "odd/", prefix + "sub/x.csv"]
    ours = prefix + "part-00000.parquet"
    assert lake.foreign(prefix, [(prefix, 0), (ours, 1)], [ours]) == []


def test_the_refusal_names_the_prefix_the_count_and_the_way_out():
    message = lake.refusal(BUCKET, {"raw/sales/orders/": [f"raw/sales/orders/f{i}" for i in range(5)]})
    assert message.startswith("s3://datalake/raw/sales/orders/ holds 5 object(s) seed did not write")
    assert "f0" in message and "f3" not in message and "--reset" in message and "more prefix" not in message
    assert "\n" not in message
    two = lake.refusal(BUCKET, {"raw/sales/orders/": ["raw/sales/orders/x"], "raw/marketing/leads/": ["y", "z"]})
    assert "raw/sales/orders/ holds 1 object(s)" in two and "(and 1 more prefix(es) of hive.raw tables)" in two


# -- the files --------------------------------------------------------------------------------

def batches() -> list[pa.RecordBatch]:
    rows = [(i, f"name, \"{i}\"", i * 1000, 19000 + i, Decimal(f"{i}.25")) for i in range(25)]
    table = pa.Table.from_pylist([dict(zip(SCHEMA.names, r)) for r in rows], schema=SCHEMA)
    return table.to_batches(max_chunksize=10)


def test_one_pass_writes_the_same_csv_as_csv_chunks_and_a_parquet_copy(tmp_path):
    seen = []
    rows = lake.write_files(iter(batches()), tmp_path / "t.csv", tmp_path / "t.parquet", seen.append)
    assert rows == 25 and seen == [10, 10, 5]
    assert (tmp_path / "t.csv").read_bytes() == b"".join(sampledata.csv_chunks(batches(), header=True))
    back = pq.read_table(tmp_path / "t.parquet")
    assert back.num_rows == 25 and back.schema.names == SCHEMA.names
    assert back.column("total_amount").to_pylist()[3] == Decimal("3.25")
    csv_back = pyarrow.csv.read_csv(tmp_path / "t.csv")
    assert csv_back.num_rows == 25 and csv_back.column_names == SCHEMA.names  # one header row, then data


def test_the_same_batches_give_byte_identical_files(tmp_path):
    for n in (1, 2):
        lake.write_files(iter(batches()), tmp_path / f"{n}.csv", tmp_path / f"{n}.parquet")
    for ext in ("csv", "parquet"):
        assert lake.sha256_of(tmp_path / f"1.{ext}") == lake.sha256_of(tmp_path / f"2.{ext}")
    assert lake.sha256_of(tmp_path / "1.csv") == hashlib.sha256((tmp_path / "1.csv").read_bytes()).hexdigest()


def test_a_small_data_set_writes_files_matching_its_row_counts(tmp_path):
    data = sampledata.Dataset(seed=7, scale=0.01)
    for table in sampledata.TABLES.values():
        rows = lake.write_files(data.batches(table.name), tmp_path / "t.csv", tmp_path / "t.parquet")
        assert rows == data.rows(table.name) == pq.read_metadata(tmp_path / "t.parquet").num_rows
        assert pq.read_schema(tmp_path / "t.parquet").names == table.schema.names
        with (tmp_path / "t.csv").open("rb") as fh:
            assert fh.readline().decode().strip().replace('"', "").split(",") == list(table.schema.names)


# -- Trino types and DDL ----------------------------------------------------------------------

@pytest.mark.parametrize("arrow, trino", [
    (pa.int32(), "integer"), (pa.int64(), "bigint"), (pa.string(), "varchar"), (pa.timestamp("ms"), "timestamp(3)"),
    (pa.date32(), "date"), (pa.decimal128(12, 2), "decimal(12,2)"), (pa.float64(), "double"), (pa.bool_(), "boolean"),
])
def test_arrow_types_map_to_the_hive_catalogs_trino_types(arrow, trino):
    assert hive.trino_type(arrow) == trino


@pytest.mark.parametrize("arrow", [pa.timestamp("us"), pa.timestamp("ms", tz="UTC"), pa.list_(pa.int32())])
def test_types_the_tables_cannot_read_as_written_are_refused(arrow):
    with pytest.raises(DatameshError, match="trino_type"):
        hive.trino_type(arrow)


def test_every_data_set_table_maps():
    for table in sampledata.TABLES.values():
        assert [name for name, _ in hive.columns(table.schema)] == table.schema.names


def test_the_ddl_text():
    table = FakeTable("customers", "sales")
    assert hive.create_schema_sql(BUCKET) == \
        "CREATE SCHEMA IF NOT EXISTS hive.raw WITH (location = 's3a://datalake/raw/')"
    assert hive.create_table_sql(BUCKET, table) == (
        'CREATE TABLE hive.raw."customers" (\n'
        '  "customer_id" integer,\n  "customer_name" varchar,\n  "created_at" timestamp(3),\n'
        '  "birthday" date,\n  "total_amount" decimal(12,2)\n)\n'
        "WITH (external_location = 's3a://datalake/raw/sales/customers/', format = 'PARQUET')")
    assert hive.drop_table_sql(table) == 'DROP TABLE hive.raw."customers"'
    assert hive.count_sql(table) == 'SELECT count(*) FROM hive.raw."customers"'
    assert hive.literal("it's") == "'it''s'"


SHOWN = """CREATE TABLE hive.raw.customers (
   customer_id integer,
   customer_name varchar,
   created_at timestamp(3),
   birthday date,
   total_amount decimal(12, 2)
)
WITH (
   external_location = 's3a://datalake/raw/sales/customers',
   format = 'PARQUET'
)"""
WANTED = hive.columns(SCHEMA)
WHERE = "s3a://datalake/raw/sales/customers/"


def test_show_create_tables_properties_are_read():
    assert hive.properties(SHOWN) == {"external_location": "s3a://datalake/raw/sales/customers", "format": "PARQUET"}


def test_a_table_with_the_right_columns_location_and_format_is_left_alone():
    # the metastore drops the location's trailing slash
    assert hive.decide(WANTED, list(WANTED), SHOWN, WHERE) == ("ok", "")


def test_a_missing_table_is_created():
    assert hive.decide(WANTED, None, None, WHERE) == ("create", "missing")


@pytest.mark.parametrize("live, shown, why", [
    (WANTED[:-1], SHOWN, "columns"),
    ([*WANTED[:-1], ("total_amount", "double")], SHOWN, "columns"),
    (WANTED, SHOWN.replace("raw/sales/customers", "raw/sales/orders"), "location s3a://datalake/raw/sales/orders"),
    (WANTED, SHOWN.replace("PARQUET", "ORC"), "format ORC"),
])
def test_an_external_table_of_another_definition_is_replaced(live, shown, why):
    todo, reason = hive.decide(WANTED, list(live), shown, WHERE)
    assert todo == "replace" and why in reason


def test_a_managed_table_is_not_replaced_silently():
    managed = SHOWN.replace("   external_location = 's3a://datalake/raw/sales/customers',\n", "")
    assert hive.decide(WANTED, list(WANTED), managed, WHERE)[0] == "managed"
