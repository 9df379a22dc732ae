"""The data products, as a user gets them from `invoke seed` on the joined testbed: dbt_projects/
built and tested by dbt on the real Trino through the API server's port-forward, the products read
back from the domains' own PostgreSQL, and the docs served by the dbt-docs server on 30084."""

from __future__ import annotations

import io
import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from datamesh import dbt, probes
from datamesh.errors import DatameshError
from datamesh.report import Reporter
from datamesh.trino import access
from tests.e2e.conftest import sql, trino

SCALE = "0.2"
MODELS = sorted(p.stem for p in (dbt.PROJECT / "models").rglob("*.sql"))
PRODUCTS = {  # published into each domain's own database
    "postgres-sales-domain": ["mart_sales__customers", "mart_sales__customer_lifetime_value"],
    "postgres-marketing-domain": ["mart_marketing__leads", "mart_marketing__campaign_performance"],
}
DOCS = "http://127.0.0.1:30084"


@pytest.fixture(scope="module")
def seeded(joined, datamesh):
    """A seed that builds every product (--reset), whatever earlier tests left."""
    run = datamesh("seed", "--inventory", "testbed", "--scale", SCALE, "--reset", "--yes")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        return answer.read()


def front_page() -> bytes:
    """The site's front page, which must be the docs, not the placeholder (marked by a header)."""
    with urllib.request.urlopen(f"{DOCS}/", timeout=10) as answer:
        assert answer.status == 200 and answer.headers.get("X-Dbt-Docs") is None
        return answer.read()


def fingerprint(reach) -> dict[str, list]:
    """Every product's row count and Trino checksum of its rows."""
    out = {}
    found = [(catalog, schema, table) for catalog in ("sales_domain", "marketing_domain", "hive")
             for schema, table in trino(reach, f"SELECT table_schema, table_name FROM {catalog}.information_schema.tables "
                                               "WHERE table_name LIKE 'mart%'")]
    for catalog, schema, table in found:
        if table in MODELS:
            columns = [c[0] for c in trino(reach, f"SHOW COLUMNS FROM {catalog}.{schema}.{table}")]
            row = ", ".join(f'"{c}"' for c in columns)
            out[f"{catalog}.{schema}.{table}"] = trino(
                reach, f"SELECT count(*), to_hex(checksum(ROW({row}))) FROM {catalog}.{schema}.{table}")[0]
    return out


def test_seed_builds_and_tests_every_model_with_no_warning(seeded):
    steps = {role["name"]: role for role in seeded.report["roles"]}
    assert list(steps) == ["postgres", "lake", "hive", "dbt", "docs"]
    assert sorted(o["name"] for o in steps["dbt"]["objects"]) == MODELS
    assert "warning:" not in seeded.stdout
    assert "  dbt: " in seeded.stdout  # dbt's own log lines come through the progress output
    assert "--reset rebuilds everything" in seeded.stdout
    assert "tests:   " in seeded.stdout and " passed" in seeded.stdout
    assert all(o["status"] == "changed" for o in steps["dbt"]["objects"])


def test_products_are_tables_in_the_domains_own_databases_and_match_their_sources(seeded, reach):
    [(customers,)] = sql(reach, "postgres-sales", "SELECT count(*) FROM customers")
    [(campaigns,)] = sql(reach, "postgres-marketing", "SELECT count(*) FROM campaigns")
    [(leads,)] = sql(reach, "postgres-marketing", "SELECT count(*) FROM leads")
    [(revenue,)] = sql(reach, "postgres-sales", "SELECT sum(total_amount) FROM orders "
                                                "WHERE status NOT IN ('cancelled', 'refunded')")
    for endpoint, tables in PRODUCTS.items():
        listed = {t for (t,) in sql(reach, endpoint, "SELECT table_name FROM information_schema.tables "
                                                     "WHERE table_schema = 'data_products'")}
        assert set(tables) <= listed, endpoint
    clv = "data_products.mart_sales__customer_lifetime_value"
    assert sql(reach, "postgres-sales-domain", f"SELECT count(*) FROM {clv}") == [(customers,)]
    [(lifetime,)] = sql(reach, "postgres-sales-domain", f"SELECT sum(lifetime_revenue) FROM {clv}")
    assert lifetime == revenue
    assert sql(reach, "postgres-marketing-domain",
               "SELECT count(*) FROM data_products.mart_marketing__campaign_performance") == [(campaigns,)]
    assert sql(reach, "postgres-marketing-domain", "SELECT count(*) FROM data_products.mart_marketing__leads") == \
        [(leads,)]


def test_cross_domain_products_are_hive_tables_in_the_curated_lake(seeded, reach):
    bucket = reach.inventory["minio"]["bucket"]
    for table in ("mart_lead_to_customer_journey", "mart_customer_360"):
        [[create]] = trino(reach, f"SHOW CREATE TABLE hive.curated.{table}")
        [[rows]] = trino(reach, f"SELECT count(*) FROM hive.curated.{table}")
        assert rows > 0, table
        [[location]] = trino(reach, f"SELECT \"$path\" FROM hive.curated.{table} LIMIT 1")
        assert location.startswith(f"s3a://{bucket}/curated/") or location.startswith(f"s3://{bucket}/curated/"), \
            (table, location, create)
    # the journey joins marketing's leads to sales' customers: every row is a lead that became a customer
    [[journeys]] = trino(reach, "SELECT count(*) FROM hive.curated.mart_lead_to_customer_journey")
    [[matched]] = trino(reach, "SELECT count(*) FROM marketing.public.leads l JOIN sales.public.customers c "
                               "ON lower(trim(l.email)) = lower(trim(c.email))")
    assert journeys == matched > 0


def test_docs_are_served_on_the_nodeport_and_list_every_model(seeded):
    assert b'ng-app="dbt"' in front_page()
    manifest = json.loads(get(f"{DOCS}/manifest.json"))
    catalog = json.loads(get(f"{DOCS}/catalog.json"))
    documented = sorted(n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model")
    assert documented == MODELS
    in_catalog = {n["metadata"]["name"] for n in catalog["nodes"].values()}
    assert set(MODELS) <= in_catalog


def test_the_docs_are_still_served_after_the_docs_pod_restarts(seeded):
    from testbed import services

    before = get(f"{DOCS}/catalog.json")
    services.restart("dbt-docs")
    assert get(f"{DOCS}/catalog.json") == before
    front_page()


def test_a_second_seed_rebuilds_nothing_and_the_products_stay_the_same(seeded, datamesh, reach):
    before = fingerprint(reach)
    assert set(before) >= {f"sales_domain.data_products.{t}" for t in PRODUCTS["postgres-sales-domain"]}
    again = datamesh("seed", "--inventory", "testbed", "--scale", SCALE, "--only", "dbt,docs")
    assert again.returncode == 0, again.stdout[-4000:]
    assert again.totals["changed"] == 0, again.stdout[-4000:]
    assert "sources unchanged" in again.stdout
    assert fingerprint(reach) == before


@pytest.fixture
def project_copy(tmp_path) -> Path:
    copy = tmp_path / "dbt_projects"
    shutil.copytree(dbt.PROJECT, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return copy


def build(reach, project: Path, work: Path, *select: str) -> None:
    with reach.open("trino") as endpoint:
        dbt.run(["build", "--select", *select], endpoint=endpoint, login=access(reach), work=work, project=project,
                dbt_vars=dbt.project_vars(reach.inventory.vars), reporter=Reporter(open("/dev/null", "w")))


def test_a_contract_violation_fails_the_build_naming_the_model_and_leaves_the_product(seeded, reach, project_copy,
                                                                                      tmp_path):
    model = project_copy / "models" / "marts" / "sales" / "mart_sales__customer_lifetime_value.sql"
    text = model.read_text()
    typed = "cast(coalesce(o.order_count, 0) as bigint)"
    assert text.count(typed) == 1
    model.write_text(text.replace(typed, "cast(coalesce(o.order_count, 0) as double)"))  # the contract says bigint
    before = fingerprint(reach)
    with pytest.raises(DatameshError) as failed:
        build(reach, project_copy, tmp_path / "work", "mart_sales__customer_lifetime_value")
    message = str(failed.value)
    assert "model mart_sales__customer_lifetime_value" in message and "contract" in message.lower(), message
    assert "order_count" in message, message
    assert "\n" not in message
    assert fingerprint(reach) == before


def test_a_failing_test_is_named_with_its_model(seeded, reach, project_copy, tmp_path):
    tests = project_copy / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "no_customer_is_named_nobody.sql").write_text(
        "select * from {{ ref('mart_sales__customers') }} where customer_id > 0")
    with pytest.raises(DatameshError) as failed:
        build(reach, project_copy, tmp_path / "work", "no_customer_is_named_nobody")
    message = str(failed.value)
    assert "test no_customer_is_named_nobody" in message and "mart_sales__customers" in message, message


def test_files_without_their_hive_table_are_refused_and_cleared_by_reset(seeded, datamesh, reach):
    """A metastore that lost a product's table while its folder kept files: CREATE TABLE would fail."""
    bucket = reach.inventory["minio"]["bucket"]
    trino(reach, "DROP TABLE hive.curated.mart_customer_360")
    login = reach.login("minio")
    with reach.open("minio") as (host, port):
        s3 = probes.s3_client(f"{host}:{port}", login.user, login.password)
        s3.put_object(bucket, "curated/mart_customer_360/part-0.parquet", io.BytesIO(b"old"), 3)
    refused = datamesh("seed", "--inventory", "testbed", "--scale", SCALE, "--only", "dbt")
    assert refused.returncode != 0
    assert f"s3://{bucket}/curated/mart_customer_360/ hold the files of an earlier build" in refused.stdout
    assert "--only dbt --reset" in refused.stdout and "Traceback" not in refused.stdout + refused.stderr
    again = datamesh("seed", "--inventory", "testbed", "--scale", SCALE, "--only", "dbt", "--reset", "--yes")
    assert again.returncode == 0, again.stdout[-4000:]
    [[rows]] = trino(reach, "SELECT count(*) FROM hive.curated.mart_customer_360")
    assert rows > 0
