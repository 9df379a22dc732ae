"""roles/postgres/seed.py without a server: which databases it fills, when it loads, and its COPY reader."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from datamesh import sampledata
from datamesh.errors import DatameshError
from datamesh.role import load_module

pg = load_module("postgres", "seed")
DATA = sampledata.Dataset(seed=42, scale=1.0)
SALES = [sampledata.TABLES["customers"], sampledata.TABLES["orders"]]


def ctx(reset: bool = False, data=DATA):
    return SimpleNamespace(data=data, reset=reset)


def seeded(table: str, data=DATA, rows: int | None = None, others: int = 0) -> pg.State:
    """A table as seed left it (rows= and others= change it behind seed's back)."""
    return pg.State(table, data.rows(table) if rows is None else rows, others, (data.fingerprint, data.rows(table)))


def test_the_step_keeps_the_seed_contract():
    assert pg.STEP == "postgres" and pg.NEEDS == ["postgres"] and callable(pg.seed)


def test_each_source_database_gets_its_own_tables_in_load_order():
    assert [(endpoint, database, [t.name for t in tables]) for endpoint, database, tables in pg.databases()] == [
        ("postgres-sales", "sales_db", ["customers", "orders"]),
        ("postgres-marketing", "marketing_db", ["campaigns", "leads"]),
    ]


def test_a_database_holding_this_data_set_needs_nothing():
    assert not pg.needs_load(ctx(), "sales_db", SALES, [seeded("customers"), seeded("orders")])


@pytest.mark.parametrize("states", [
    [pg.State("customers", 0, 0, None), pg.State("orders", 0, 0, None)],                  # never seeded
    [seeded("customers"), seeded("orders", rows=49_000)],                                 # rows deleted
    [seeded("customers", sampledata.Dataset(42, 2.0)), seeded("orders", sampledata.Dataset(42, 2.0))],  # other scale
    [seeded("customers", sampledata.Dataset(7)), seeded("orders")],                        # other seed
], ids=["empty", "deleted", "other-scale", "other-seed"])
def test_anything_else_is_loaded(states):
    assert pg.needs_load(ctx(), "sales_db", SALES, states)


def test_rows_seed_did_not_write_are_refused_by_table_and_count():
    states = [seeded("customers", rows=10_003, others=3), seeded("orders", rows=50_001, others=1)]
    with pytest.raises(DatameshError) as caught:
        pg.needs_load(ctx(), "sales_db", SALES, states)
    message = str(caught.value)
    assert "sales_db.customers holds 3 rows" in message and "sales_db.orders holds 1 row " in message
    assert "invoke seed --reset" in message and message.count(".") >= 2 and "\n" not in message


def test_reset_replaces_them_and_reloads_even_a_seeded_database():
    assert pg.needs_load(ctx(reset=True), "sales_db", SALES, [seeded("customers", others=3), seeded("orders")])
    assert pg.needs_load(ctx(reset=True), "sales_db", SALES, [seeded("customers"), seeded("orders")])


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
def test_the_reader_gives_the_chunks_back_in_pieces_of_at_most_size(size):
    chunks = [b"a,1\n" * 1000, b"", b"b,2\n", b"c,3\n" * 5000]
    reader, pieces = pg.Reader(iter(chunks)), []
    while piece := reader.read(size):
        assert len(piece) <= size
        pieces.append(piece)
    assert b"".join(pieces) == b"".join(chunks) and reader.read(size) == b""


def test_the_reader_pulls_chunks_only_as_they_are_read():
    pulled = []

    def chunks():
        for i in range(3):
            pulled.append(i)
            yield b"x" * 10

    reader = pg.Reader(chunks())
    assert reader.read(4) == b"xxxx" and pulled == [0]
    assert reader.read(-1) == b"x" * 26 and pulled == [0, 1, 2]


def test_the_copy_input_is_the_data_sets_csv():
    table = sampledata.TABLES["campaigns"]
    reader = pg.Reader(sampledata.csv_chunks(DATA.batches(table.name)))
    lines = reader.read(-1).decode().splitlines()
    assert len(lines) == DATA.rows(table.name) and lines[0].split(",")[0] == "1"
