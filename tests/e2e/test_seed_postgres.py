"""Step "postgres" of `invoke seed` (roles/postgres/seed.py) on the joined testbed: the step is called
as datamesh/seed.py runs it, with a Context whose Endpoints reach the real PostgreSQL servers through
the API server's port-forward. The checks read the servers directly at their in-cluster names.

Whether a run wrote nothing is read from pg_stat_user_tables (n_tup_ins/upd/del) and the tables'
relfilenodes (TRUNCATE gives a table a new one). A backend sends its counts to the shared statistics
when it exits, a moment after it leaves pg_stat_activity, so the counts are read once no seed backend
is left and two readings half a second apart agree; each reading is a new connection, hence a
fresh statistics snapshot.
"""

from __future__ import annotations

import io
import threading
import time

import psycopg2
import pytest

from datamesh import probes, sampledata
from datamesh.errors import DatameshError
from datamesh.report import Reporter
from datamesh.role import load_module
from datamesh.seed import Context

pg = load_module("postgres", "seed")
DATA = sampledata.Dataset(seed=42, scale=1.0)
SALES, MARKETING = "postgres-sales", "postgres-marketing"
ENDPOINTS = {SALES: ["customers", "orders"], MARKETING: ["campaigns", "leads"]}
APP = "datamesh seed"  # the application_name the step connects with


def seed(reach, data=DATA, reset=False, reporter=None) -> list:
    return pg.seed(Context(data, reach, reporter or Reporter(io.StringIO()), reset))


def sql(reach, endpoint: str, statement: str) -> list[tuple]:
    """Rows of one statement (autocommit, a new connection) at the service's in-cluster name."""
    login, target = reach.login(endpoint), reach.target(endpoint)
    host = f"{target.service}.{reach.namespace(endpoint)}.svc.cluster.local"
    return probes.postgres_query(host, 5432, login.user, login.password, login.database, statement, timeout=10)


def counts(reach) -> dict[str, int]:
    return {t: sql(reach, e, f"SELECT count(*) FROM {t}")[0][0] for e, tables in ENDPOINTS.items() for t in tables}


def expected(data) -> dict[str, int]:
    return {t: data.rows(t) for t in sampledata.TABLES}


def markers(reach) -> dict[str, tuple]:
    return {name: (fingerprint, rows, str(at)) for e in ENDPOINTS
            for name, fingerprint, rows, at in sql(reach, e, "SELECT * FROM datamesh_seed.loads")}


def writes(reach) -> dict:
    """Per user table of both databases: n_tup_ins, n_tup_upd, n_tup_del and the relfilenode, settled."""
    deadline, last = time.monotonic() + 60, None
    while True:
        busy = sum(sql(reach, e, f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APP}'")[0][0]
                   for e in ENDPOINTS)
        now = {(e, schema, table): rest for e in ENDPOINTS for schema, table, *rest in sql(
            reach, e, "SELECT schemaname, relname, n_tup_ins, n_tup_upd, n_tup_del, pg_relation_filenode(relid) "
                      "FROM pg_stat_user_tables")}
        if not busy and now == last:
            return now
        assert time.monotonic() < deadline, f"the statistics did not settle: {now}"
        last = now
        time.sleep(0.5)


@pytest.fixture
def seeded(reach):
    """Both databases holding DATA and nothing else, however an earlier test left them."""
    try:
        seed(reach)
    except DatameshError:  # rows an earlier, failed test added
        seed(reach, reset=True)


def test_a_load_gives_every_table_the_data_sets_rows(reach, seeded):
    results = seed(reach, reset=True)
    assert [(r.namespace, r.name, r.status, r.action) for r in results] == [
        ("sales_db", "customers", "changed", "load"), ("sales_db", "orders", "changed", "load"),
        ("marketing_db", "campaigns", "changed", "load"), ("marketing_db", "leads", "changed", "load")]
    assert counts(reach) == expected(DATA)
    assert {t: m[:2] for t, m in markers(reach).items()} == {t: (DATA.fingerprint, n) for t, n in expected(DATA).items()}
    # the ids are the generator's, and users' next INSERT gets the id after the last seeded one
    assert sql(reach, SALES, "SELECT min(order_id), max(order_id), count(DISTINCT order_id) FROM orders")[0] == (
        1, DATA.rows("orders"), DATA.rows("orders"))
    assert sql(reach, SALES, "SELECT last_value, is_called FROM orders_order_id_seq")[0] == (DATA.rows("orders") + 1, False)


def test_the_rows_are_the_generators_row_for_row(reach, seeded):
    first = next(DATA.batches("customers")).slice(0, 3).to_pylist()
    rows = sql(reach, SALES, "SELECT customer_id, customer_name, email, country, segment, created_at FROM customers "
                             "ORDER BY customer_id LIMIT 3")
    assert [dict(zip(sampledata.TABLES["customers"].columns, row)) for row in rows] == first


def test_a_second_run_writes_nothing(reach, seeded):
    before, marked = writes(reach), markers(reach)
    results = seed(reach)
    assert {r.status for r in results} == {"ok"} and len(results) == 4
    assert writes(reach) == before  # no INSERT, UPDATE, DELETE or TRUNCATE in either database
    assert markers(reach) == marked


def test_another_scale_replaces_the_data(reach, seeded):
    small = sampledata.Dataset(seed=42, scale=0.25)
    assert {r.status for r in seed(reach, small)} == {"changed"}
    assert counts(reach) == expected(small)
    assert {m[0] for m in markers(reach).values()} == {small.fingerprint}
    assert {r.status for r in seed(reach)} == {"changed"}
    assert counts(reach) == expected(DATA)


def test_a_users_rows_make_seed_refuse_until_reset_replaces_them(reach, seeded):
    sql(reach, SALES, "INSERT INTO customers (customer_name, email) VALUES ('A User', 'a.user@example.org');"
                      "INSERT INTO orders (customer_id, total_amount) SELECT max(customer_id), 9.99 FROM customers")
    before = writes(reach)
    with pytest.raises(DatameshError) as refused:
        seed(reach)
    message = str(refused.value)
    assert "sales_db.customers holds 1 row " in message and "sales_db.orders holds 1 row " in message
    assert "invoke seed --reset" in message and "\n" not in message
    assert writes(reach) == before  # refused before writing anything
    assert sql(reach, SALES, "SELECT max(customer_id) FROM customers")[0][0] == DATA.rows("customers") + 1

    assert {r.status for r in seed(reach, reset=True)} == {"changed"}
    assert counts(reach) == expected(DATA)
    assert sql(reach, SALES, "SELECT count(*) FROM customers WHERE email = 'a.user@example.org'") == [(0,)]


def test_two_seeds_at_once_queue_and_the_second_finds_the_work_done(reach, seeded):
    other = sampledata.Dataset(seed=7, scale=0.5)
    results: list = [None, None]

    def one(i):
        results[i] = seed(reach, other)

    workers = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert all(r is not None for r in results), "a seed failed or hung (see the thread's exception above)"
    for mine, theirs in zip(*results):  # per table: one seed loaded it, the other found it loaded
        assert sorted([mine.status, theirs.status]) == ["changed", "ok"], (mine, theirs)
    assert counts(reach) == expected(other)


def test_every_order_has_its_customer_and_every_lead_its_campaign(reach, seeded):
    assert sql(reach, SALES, "SELECT count(*) FROM orders o WHERE NOT EXISTS "
                             "(SELECT 1 FROM customers c WHERE c.customer_id = o.customer_id)") == [(0,)]
    assert sql(reach, MARKETING, "SELECT count(*) FROM leads l WHERE campaign_id IS NOT NULL AND NOT EXISTS "
                                 "(SELECT 1 FROM campaigns c WHERE c.campaign_id = l.campaign_id)") == [(0,)]
    # the constraints themselves are untouched and still enforced
    assert sql(reach, SALES, "SELECT convalidated FROM pg_constraint WHERE conname = 'orders_customer_id_fkey'") == [(True,)]
    with pytest.raises(probes.ProbeError, match="foreign key"):
        sql(reach, SALES, "INSERT INTO orders (order_id, customer_id, total_amount) VALUES (-1, -1, 1)")


def within(seconds: float, call, *args, **kwargs):
    """call(*args, **kwargs) on a daemon thread: its result or exception, or a test failure when it hangs."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = call(*args, **kwargs)
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"{call.__name__} still runs after {seconds:.0f} s: the port-forward never passed the lost "
                    "connection on to the client")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class Killer(Reporter):
    """Terminates the seed's backend on `endpoint` once `table` has sent `after` rows."""

    def __init__(self, reach, endpoint: str, table: str, after: int):
        super().__init__(io.StringIO())
        self.reach, self.endpoint, self.table, self.after, self.killed = reach, endpoint, table, after, 0

    def progress(self, what, done, total, seconds, final=False):
        super().progress(what, done, total, seconds, final)
        if what.endswith("." + self.table) and done >= self.after and not final and not self.killed:
            self.killed = sql(self.reach, self.endpoint, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                                         f"WHERE application_name = '{APP}' AND state = 'active'")[0][0]


def test_a_connection_killed_mid_copy_leaves_the_data_as_it_was(reach, seeded):
    bigger = sampledata.Dataset(seed=42, scale=2.0)  # orders: two batches, so the COPY is still sending after one
    assert bigger.rows("orders") > sampledata.CHUNK
    killer = Killer(reach, SALES, "orders", sampledata.CHUNK)
    before = markers(reach)
    with pytest.raises(DatameshError) as failed:
        within(120, seed, reach, bigger, reporter=killer)
    assert killer.killed == 1
    message = str(failed.value)  # the step's own sentence: the pod is fine, the server closed the connection
    assert "loading sales_db.orders through postgres-sales failed" in message
    assert "nothing was changed in sales_db" in message and "re-run `invoke seed`" in message
    assert counts(reach) == expected(DATA) and markers(reach) == before  # the transaction never happened

    assert {r.status for r in seed(reach, bigger)} == {"changed"}  # the next run completes
    assert counts(reach) == expected(bigger)
    seed(reach)


def test_a_lock_held_by_a_user_fails_within_the_lock_timeout_not_forever(reach, seeded, monkeypatch):
    monkeypatch.setattr(pg, "LOCK_TIMEOUT_MS", 1000)
    login = reach.login(SALES)
    host = f"{reach.target(SALES).service}.{reach.namespace(SALES)}.svc.cluster.local"
    with psycopg2.connect(host=host, port=5432, user=login.user, password=login.password, dbname=login.database) as user:
        with user.cursor() as cur:
            cur.execute("LOCK TABLE orders IN ROW EXCLUSIVE MODE")  # a user's open transaction that writes orders
            with pytest.raises(DatameshError, match="reading sales_db through postgres-sales failed .*lock timeout"):
                seed(reach)
        user.rollback()
    user.close()
