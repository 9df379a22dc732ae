"""The read-only logins on the service testbed's real PostgreSQL, made by the postgres role's
readonly Jobs' script (run natively by testbed/postgres.py): what Trino's source catalogs and
Grafana's data sources log in with may read and may not write, reads the tables the owner makes
later, and a second run of the script changes nothing."""

from __future__ import annotations

import uuid

import pytest

from datamesh import probes
from datamesh.trino import literal
from testbed import postgres
from testbed.rendered import Objects, container, render, resolve_env
from tests.e2e.conftest import INVENTORY

READERS = ["postgres-sales", "postgres-marketing", "postgres-sales-domain", "postgres-marketing-domain"]
# Grafana's data sources (files/grafana/datasources.yaml): env prefix -> a table each may read
DATASOURCES = {"SALES": "public.customers", "MARKETING": "public.leads",
               "SALES_DOMAIN": "data_products.registry", "MARKETING_DOMAIN": "data_products.registry"}
INSERTS = {"public.customers": "(customer_name, email) VALUES ('e2e', 'e2e-readonly@example.com')",
           "public.leads": "(email, source) VALUES ('e2e-readonly@example.com', 'web')",
           "data_products.registry": "(product_name, owner, source_table) VALUES ('e2e', 'e2e', 'e2e')"}


def state_sql(reader: str, schemas: list[str]) -> str:
    """What the script manages, with each row's xmin: a row the script rewrote has a new one, even with equal values."""
    names = "ARRAY[" + ", ".join(literal(s) for s in schemas) + "]"
    return f"""
SELECT 'role', xmin::text, concat_ws(' ', rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolpassword)
  FROM pg_authid WHERE rolname = {literal(reader)}
UNION ALL SELECT 'database', xmin::text, datacl::text FROM pg_database WHERE datname = current_database()
UNION ALL SELECT 'schema ' || nspname, xmin::text, nspacl::text FROM pg_namespace WHERE nspname = ANY({names})
UNION ALL SELECT 'relation ' || c.oid::regclass::text, c.xmin::text, c.relacl::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY({names}) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL SELECT 'default ' || defaclnamespace::regnamespace::text, xmin::text, defaclacl::text FROM pg_default_acl
ORDER BY 1, 2, 3"""


def owner_sql(config: dict, name: str, sql: str) -> list[tuple]:
    pg = config["postgres"]["instances"][name]
    return probes.postgres_query(pg["fqdn"], 5432, pg["user"], pg["password"], pg["database"], sql)


def reader_sql(config: dict, name: str, sql: str) -> list[tuple]:
    """`sql` as the reader, with the login the readonly Job was given."""
    env = config["postgres"]["readonly_jobs"][name]["env"]
    return probes.postgres_query(env["PGHOST"], 5432, env["READER_USER"], env["READER_PASSWORD"], env["PGDATABASE"], sql)


def refused(run) -> str:
    with pytest.raises(probes.ProbeError) as caught:
        run()
    assert "permission denied" in str(caught.value), caught.value
    return str(caught.value)


def test_trinos_sales_catalog_reads_the_source_and_postgresql_refuses_its_insert(query):
    assert query("SELECT count(*) FROM sales.public.customers")[0][0] >= 0
    refused(lambda: query("INSERT INTO sales.public.customers (customer_name, email) "
                          "VALUES ('e2e', 'e2e-trino-readonly@example.com')"))
    assert query("SELECT count(*) FROM sales.public.customers WHERE email = 'e2e-trino-readonly@example.com'") == [[0]]


@pytest.fixture(scope="module")
def grafana_env(config) -> dict[str, str]:
    """The grafana Deployment's env as its pod gets it, resolved with the testbed's Secrets (no Grafana runs here)."""
    _, objects = render(INVENTORY)
    objs = Objects(objects, config["secrets"])
    grafana = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "grafana")
    return resolve_env(objs, grafana, container(grafana, "grafana"))


@pytest.mark.parametrize("prefix", sorted(DATASOURCES))
def test_grafanas_data_source_login_reads_and_may_not_write(config, grafana_env, prefix):
    host, port = grafana_env[f"{prefix}_DB_ADDRESS"].rsplit(":", 1)
    user, password = grafana_env[f"{prefix}_DB_USER"], grafana_env[f"{prefix}_DB_PASSWORD"]
    database = next(pg["database"] for pg in config["postgres"]["instances"].values() if pg["fqdn"] == host)
    owners = {pg["user"] for pg in config["postgres"]["instances"].values()}
    assert user not in owners, f"Grafana's {prefix} data source logs in as an owner ({user})"
    table = DATASOURCES[prefix]

    def run(sql: str) -> list[tuple]:
        return probes.postgres_query(host, int(port), user, password, database, sql)

    assert run(f"SELECT count(*) FROM {table}")[0][0] >= 0
    refused(lambda: run(f"INSERT INTO {table} {INSERTS[table]}"))
    refused(lambda: run(f"CREATE TABLE public.e2e_{uuid.uuid4().hex[:8]} (i int)"))


@pytest.mark.parametrize("name,schema", [("postgres-sales", "public"), ("postgres-sales-domain", "data_products")])
def test_the_reader_reads_a_table_the_owner_creates_after_the_job_ran(config, name, schema):
    table = f"{schema}.e2e_later_{uuid.uuid4().hex[:8]}"
    owner_sql(config, name, f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (1), (2)")
    try:
        assert reader_sql(config, name, f"SELECT id FROM {table} ORDER BY id") == [(1,), (2,)]
        refused(lambda: reader_sql(config, name, f"DELETE FROM {table}"))
    finally:
        owner_sql(config, name, f"DROP TABLE {table}")


@pytest.mark.parametrize("name", READERS)
def test_a_second_run_of_the_jobs_script_succeeds_and_changes_nothing(config, name, tmp_path):
    job = config["postgres"]["readonly_jobs"][name]
    state = state_sql(job["env"]["READER_USER"], job["env"]["SCHEMAS"].split())
    before = owner_sql(config, name, state)
    assert [row for row in before if row[0] == "role"], f"{name} has no reader role: did its readonly Job run?"
    output = postgres.run_readonly_job(job, tmp_path / "readonly-job")
    assert "(no change, password kept)" in output, output
    assert owner_sql(config, name, state) == before
