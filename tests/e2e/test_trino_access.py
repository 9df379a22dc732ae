"""Trino's logins and access rules, enforced by the real Trino 476 of the service testbed with the
files the trino role renders (password file from the Secret, rules.json, HTTPS with the engine's
certificate): each user may do what the README's table says, and nothing else."""

from __future__ import annotations

import uuid

import pytest

from datamesh import probes
from datamesh.trino import Access
from tests.e2e.conftest import trino_login, trino_url


@pytest.fixture(scope="module")
def as_user(config):
    """as_user(name)(sql) -> rows, as that Trino user over HTTPS with the password from its Secret."""
    def login(name: str):
        access = trino_login(config, name)
        return lambda sql: access.query(trino_url(config, access), sql)
    return login


def denied(run, sql: str) -> str:
    with pytest.raises(probes.ProbeError) as caught:
        run(sql)
    assert "Access Denied" in str(caught.value), caught.value
    return str(caught.value)


@pytest.fixture
def name() -> str:
    return f"access_{uuid.uuid4().hex[:10]}"


def test_admin_reads_every_catalog_and_writes_the_lake(as_user, name):
    admin = as_user("admin")
    for catalog in ("sales", "marketing", "sales_domain", "marketing_domain", "hive"):
        assert admin(f"SHOW SCHEMAS FROM {catalog}")
    admin(f"CREATE TABLE hive.default.{name} AS SELECT 1 AS one")
    admin(f"DROP TABLE hive.default.{name}")


def test_marketing_may_not_read_the_sales_source_database(as_user):
    denied(as_user("marketing"), "SELECT count(*) FROM sales.public.customers")


@pytest.mark.parametrize("domain,other", [("sales", "marketing"), ("marketing", "sales")])
def test_a_domain_reads_its_source_and_the_others_products_and_writes_only_its_own_catalog(as_user, domain, other, name):
    run = as_user(domain)
    source = {"sales": "sales.public.customers", "marketing": "marketing.public.leads"}
    assert run(f"SELECT count(*) FROM {source[domain]}")[0][0] >= 0
    assert run(f"SELECT count(*) FROM {other}_domain.data_products.registry")[0][0] >= 0
    run(f"CREATE TABLE {domain}_domain.data_products.{name} AS SELECT 1 AS one")
    try:
        assert run(f"SELECT one FROM {domain}_domain.data_products.{name}") == [[1]]
    finally:
        run(f"DROP TABLE {domain}_domain.data_products.{name}")
    denied(run, f"SELECT count(*) FROM {source[other]}")
    denied(run, f"CREATE TABLE {other}_domain.data_products.{name} AS SELECT 1 AS one")
    denied(run, f"INSERT INTO {source[domain]} SELECT * FROM {source[domain]} LIMIT 0")
    assert {row[0] for row in run("SHOW CATALOGS")} == {"hive", "system", domain, f"{domain}_domain", f"{other}_domain"}


def test_the_analyst_reads_products_and_curated_data_and_writes_nothing(as_user, name):
    analyst, admin = as_user("analyst"), as_user("admin")
    admin(f"CREATE TABLE hive.curated.{name} AS SELECT 1 AS one")
    try:
        assert analyst(f"SELECT one FROM hive.curated.{name}") == [[1]]
        denied(analyst, f"INSERT INTO hive.curated.{name} VALUES (2)")
        denied(analyst, f"DROP TABLE hive.curated.{name}")
    finally:
        admin(f"DROP TABLE hive.curated.{name}")
    for catalog in ("sales_domain", "marketing_domain"):
        assert analyst(f"SELECT count(*) FROM {catalog}.data_products.registry")[0][0] >= 0
        denied(analyst, f"INSERT INTO {catalog}.data_products.registry (product_name, owner, source_table) "
                        "VALUES ('x', 'x', 'x')")
    denied(analyst, f"CREATE TABLE hive.default.{name} AS SELECT 1 AS one")
    denied(analyst, "SELECT count(*) FROM sales.public.customers")


def test_a_wrong_password_and_a_missing_one_are_refused(config):
    login = trino_login(config)
    url = trino_url(config, login)
    with pytest.raises(probes.LoginRefused, match="Invalid credentials"):
        Access(login.user, login.password + "x", login.ca).query(url, "SELECT 1")
    with pytest.raises(probes.LoginRefused):
        probes.trino_query(url, "SELECT 1", user="admin", ca=login.ca)


def test_plain_http_refuses_every_login_and_still_serves_its_health(config):
    http = next(s for s in config["trino"]["service"] if s["port"] == 8080)
    url = f"http://{http['host']}:{http['port']}"
    for password in (None, trino_login(config).password):
        with pytest.raises(probes.ProbeError, match="Authentication over HTTP is not enabled"):
            probes.trino_query(url, "SELECT 1", user="admin", password=password)
    assert probes.trino_started(url)


def test_the_certificate_is_checked_by_the_client(config):
    login = trino_login(config)
    other = Access(login.user, login.password, probes_ca_of_another_server())
    with pytest.raises(probes.ProbeError, match="could not be queried"):
        other.query(trino_url(config, login), "SELECT 1")


def probes_ca_of_another_server() -> str:
    from datamesh import generated

    return generated.self_signed(["trino-coordinator.data-platform.svc.cluster.local"])[1]
