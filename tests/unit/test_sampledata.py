"""The sample data set (datamesh/sampledata.py): deterministic, sound, shaped like a real shop's, loadable.

Pure: no sockets. The SQL files are the contract the columns and status values are checked against.
"""

from __future__ import annotations

import datetime
import io
import math
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from datamesh import ROOT, sampledata
from datamesh.sampledata import ANCHOR, Dataset

SQL = {db: (ROOT / "files" / "sql" / f"{db}.sql").read_text() for db in ("sales_db", "marketing_db")}


def sql_columns(database: str, table: str) -> list[str]:
    body = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", SQL[database], re.S).group(1)
    return [line.split()[0] for line in body.strip().splitlines() if not line.strip().startswith("CHECK")]


def sql_statuses(database: str, table: str) -> set[str]:
    body = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", SQL[database], re.S).group(1)
    return set(re.findall(r"'(\w+)'", re.search(r"status IN \(([^)]*)\)", body).group(1)))


def table(data: Dataset, name: str) -> pa.Table:
    return pa.Table.from_batches(list(data.batches(name)), schema=sampledata.TABLES[name].schema)


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    data = Dataset(seed=42, scale=1.0)
    return {name: table(data, name) for name in sampledata.TABLES}


def column(t: pa.Table, name: str) -> list:
    return t.column(name).to_pylist()


def test_tables_have_the_sql_tables_columns_in_load_order():
    assert list(sampledata.TABLES) == ["customers", "orders", "campaigns", "leads"]
    for name, t in sampledata.TABLES.items():
        assert t.database == f"{t.domain}_db" and t.key == t.columns[0]
        assert list(t.columns) == sql_columns(t.database, name) == t.schema.names


def test_batches_have_the_arrow_types_of_the_contract(tables):
    for name, t in tables.items():
        types = {f.name: f.type for f in t.schema}
        assert types[sampledata.TABLES[name].key] == pa.int32()
        assert all(types[c] == pa.timestamp("ms") for c in types if c.endswith("_at"))
        assert all(types[c] == pa.date32() for c in types if c.endswith("_date"))
    assert tables["orders"].schema.field("total_amount").type == pa.decimal128(12, 2)
    assert tables["campaigns"].schema.field("budget").type == pa.decimal128(12, 2)
    for t in tables.values():                                            # whole seconds
        millis = pc.cast(t["created_at"], pa.int64())
        assert pc.all(pc.equal(millis, pc.multiply(pc.divide(millis, 1000), 1000))).as_py()


def test_same_seed_and_scale_give_identical_batches_and_csv_bytes():
    one, two = Dataset(seed=7, scale=1.5), Dataset(seed=7, scale=1.5)
    for name in sampledata.TABLES:
        first, second = list(one.batches(name)), list(two.batches(name))
        assert [len(b) for b in first] == [len(b) for b in second]
        assert all(a.equals(b) for a, b in zip(first, second))
        assert b"".join(sampledata.csv_chunks(first)) == b"".join(sampledata.csv_chunks(two.batches(name)))
    assert len(list(one.batches("orders"))) == math.ceil(one.rows("orders") / sampledata.CHUNK) > 1


def test_another_seed_gives_other_data():
    one, other = Dataset(seed=1, scale=0.2), Dataset(seed=2, scale=0.2)
    for name in sampledata.TABLES:
        assert not table(one, name).equals(table(other, name)), name


def test_row_counts_grow_linearly_with_scale_and_never_drop_below_one():
    one = Dataset(scale=1)
    assert {n: one.rows(n) for n in sampledata.TABLES} == {
        "customers": 10_000, "orders": 50_000, "campaigns": 60, "leads": 20_000}
    assert all(Dataset(scale=3).rows(n) == 3 * one.rows(n) for n in sampledata.TABLES)
    assert all(Dataset(scale=0.5).rows(n) * 2 == one.rows(n) for n in sampledata.TABLES)
    tiny = Dataset(scale=1e-6)
    for name in sampledata.TABLES:
        assert tiny.rows(name) == 1 == sum(len(b) for b in tiny.batches(name))
    assert sum(len(b) for b in Dataset(scale=0.37).batches("leads")) == Dataset(scale=0.37).rows("leads") == 7400


def test_orders_and_leads_point_at_rows_that_exist_and_keys_run_from_one(tables):
    for name, t in tables.items():
        assert column(t, sampledata.TABLES[name].key) == list(range(1, t.num_rows + 1))
    assert set(column(tables["orders"], "customer_id")) <= set(column(tables["customers"], "customer_id"))
    assert set(column(tables["leads"], "campaign_id")) <= set(column(tables["campaigns"], "campaign_id"))


def test_customer_emails_and_campaign_names_are_unique(tables):
    emails = column(tables["customers"], "email")
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z-]+\.[a-z-]+\d+@[a-z.]+\.[a-z]+", e) for e in emails)
    names = column(tables["campaigns"], "campaign_name")
    assert len(set(names)) == len(names)


def test_orders_fall_after_their_customer_signed_up_and_before_the_anchor(tables):
    signup = dict(zip(column(tables["customers"], "customer_id"), column(tables["customers"], "created_at")))
    orders = tables["orders"]
    for customer, day, created in zip(column(orders, "customer_id"), column(orders, "order_date"),
                                      column(orders, "created_at")):
        assert signup[customer].date() <= day < ANCHOR and created.date() == day and created >= signup[customer]


def test_about_a_third_of_leads_are_customers_who_came_in_before_signing_up(tables):
    signup = dict(zip(column(tables["customers"], "email"), column(tables["customers"], "created_at")))
    leads = tables["leads"].to_pylist()
    known = [lead for lead in leads if lead["email"] in signup]
    assert 0.25 <= len(known) / len(leads) <= 0.40
    assert len({lead["email"] for lead in known}) == len(known)        # each customer came in once
    assert all(1 <= (signup[lead["email"]].date() - lead["created_at"].date()).days <= 120 for lead in known)
    assert sum(lead["status"] == "converted" for lead in known) > 0.8 * len(known)
    strangers = [lead for lead in leads if lead["email"] not in signup]
    assert sum(lead["status"] == "converted" for lead in strangers) < 0.1 * len(strangers)


def test_statuses_are_the_ones_the_sql_allows_and_all_appear(tables):
    assert set(column(tables["orders"], "status")) == sql_statuses("sales_db", "orders")
    assert set(column(tables["leads"], "status")) == sql_statuses("marketing_db", "leads")
    statuses = column(tables["orders"], "status")
    assert statuses.count("delivered") > len(statuses) / 2 > statuses.count("pending") > 0
    assert {"web", "referral", "social", "email", "event", "partner", "ads"} == set(column(tables["leads"], "source"))
    assert len(set(column(tables["campaigns"], "channel"))) >= 5
    assert {"consumer", "small business", "enterprise"} == set(column(tables["customers"], "segment"))


def test_order_amounts_are_skewed_and_some_customers_order_much_more(tables):
    amounts = sorted(float(a) for a in column(tables["orders"], "total_amount"))
    median, mean = amounts[len(amounts) // 2], sum(amounts) / len(amounts)
    assert 0 < amounts[0] and mean > 1.2 * median and amounts[-1] > 20 * median
    counts = pc.value_counts(tables["orders"]["customer_id"]).field("counts").to_pylist()
    assert max(counts) > 8 * sorted(counts)[len(counts) // 2]


def test_dates_fall_in_the_two_years_before_the_anchor(tables):
    first = ANCHOR - datetime.timedelta(days=730)
    for name, t in tables.items():
        for field in t.schema:
            if field.name.endswith(("_at", "_date")):
                values = [v for v in column(t, field.name) if v is not None]
                low, high = min(values), max(values)
                low, high = getattr(low, "date", lambda: low)(), getattr(high, "date", lambda: high)()
                assert first <= low and high < ANCHOR, (name, field.name, low, high)
    campaigns = tables["campaigns"].to_pylist()
    assert all(c["end_date"] is None or c["end_date"] >= c["start_date"] for c in campaigns)
    assert any(c["end_date"] is None for c in campaigns)
    assert all(c["created_at"].date() <= c["start_date"] for c in campaigns)


def test_leads_mostly_fall_within_their_campaigns_window(tables):
    window = {c["campaign_id"]: (c["start_date"], c["end_date"] or ANCHOR) for c in tables["campaigns"].to_pylist()}
    leads = tables["leads"].to_pylist()
    inside = sum(window[l["campaign_id"]][0] <= l["created_at"].date() <= window[l["campaign_id"]][1] for l in leads)
    assert inside > 0.6 * len(leads)


def test_csv_round_trips_through_read_csv_to_the_same_batches(tables):
    data = Dataset(seed=42, scale=1.0)
    for name, expected in tables.items():
        text = b"".join(sampledata.csv_chunks(data.batches(name), header=True))
        options = pcsv.ConvertOptions(column_types=expected.schema, strings_can_be_null=True,
                                      quoted_strings_can_be_null=False)
        assert pcsv.read_csv(io.BytesIO(text), convert_options=options).cast(expected.schema).equals(expected), name


def test_csv_is_copy_input_without_header_fractions_or_quoted_nulls():
    data = Dataset(seed=3, scale=1.0)
    customers = b"".join(sampledata.csv_chunks(data.batches("customers"))).decode().splitlines()
    assert len(customers) == data.rows("customers") and not customers[0].startswith("customer_id")
    assert re.fullmatch(r'1,"[^"]+","[^"]+",("[^"]+")?,"[a-z ]+",\d{4}-\d\d-\d\d \d\d:\d\d:\d\d', customers[0])
    assert any(',,"' in line for line in customers)                     # an unknown country: NULL
    header = next(sampledata.csv_chunks(data.batches("campaigns"), header=True)).decode().splitlines()[0]
    assert header == ",".join(sampledata.TABLES["campaigns"].columns)
    running = next(sampledata.csv_chunks(data.batches("campaigns"))).decode().splitlines()[-1]
    assert re.search(r",\d+\.\d\d,\d{4}-\d\d-\d\d,,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", running)


def test_parquet_file_holds_a_row_group_per_batch_and_the_same_rows(tmp_path):
    data = Dataset(seed=5, scale=1.5)
    path = tmp_path / "orders.parquet"
    assert sampledata.write_parquet(data.batches("orders"), path) == data.rows("orders")
    assert pq.ParquetFile(path).num_row_groups == len(list(data.batches("orders"))) == 2
    assert pq.read_table(path).equals(table(data, "orders"))
    leads = sampledata.TABLES["leads"].schema
    assert sampledata.write_parquet(iter(()), tmp_path / "empty.parquet", schema=leads) == 0
    with pytest.raises(ValueError, match="schema"):
        sampledata.write_parquet(iter(()), tmp_path / "none.parquet")


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf"), "1", None, True])
def test_a_bad_scale_is_refused_with_a_sentence(scale):
    with pytest.raises(ValueError, match=r"^The scale must be a number above 0 .*\.$"):
        Dataset(seed=1, scale=scale)


@pytest.mark.parametrize("seed", [1.5, "42", -1, None, False])
def test_a_bad_seed_is_refused_with_a_sentence(seed):
    with pytest.raises(ValueError, match=r"^The seed must be a non-negative whole number, not .*\.$"):
        Dataset(seed=seed)


def test_fingerprint_names_version_seed_and_scale_and_unknown_tables_are_refused():
    assert Dataset(seed=42, scale=1.0).fingerprint == f"v{sampledata.VERSION} seed=42 scale=1"
    assert Dataset(seed=7, scale=0.25).fingerprint == f"v{sampledata.VERSION} seed=7 scale=0.25"
    with pytest.raises(ValueError, match="There is no sample table 'users'; the tables are customers, orders"):
        Dataset().rows("users")
