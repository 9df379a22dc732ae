"""Trino runs the rendered coordinator config and catalogs against the real PostgreSQL
instances, Hive Metastore and object store."""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from datamesh import probes
from testbed import services as svc, trino
from testbed.common import TestbedError
from tests.e2e.conftest import remove_prefix, trino_login, trino_url

JDBC_TABLES = {
    "sales": ("public", {"customers", "orders"}),
    "marketing": ("public", {"leads", "campaigns"}),
    "sales_domain": ("data_products", {"registry"}),
    "marketing_domain": ("data_products", {"registry"}),
}


def test_trino_has_every_rendered_catalog(testbed, query):
    catalogs = {r[0] for r in query("SHOW CATALOGS")}
    assert {"sales", "marketing", "hive", "sales_domain", "marketing_domain"} <= catalogs


@pytest.mark.parametrize("catalog", sorted(JDBC_TABLES))
def test_each_postgres_catalog_logs_in_and_lists_its_tables(testbed, catalog, query):
    schema, expected = JDBC_TABLES[catalog]
    tables = {r[0] for r in query(f"SHOW TABLES FROM {catalog}.{schema}")}
    assert expected <= tables


def test_hive_table_round_trips_through_metastore_and_object_store(testbed, s3, query):
    bucket = testbed.config["s3"]["bucket"]
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"e2e_{tag}", f"curated/e2e_{tag}/"
    query(f"CREATE SCHEMA hive.{schema} WITH (location = 's3a://{bucket}/{prefix}')")
    try:
        query(f"CREATE TABLE hive.{schema}.people (id integer, name varchar)")
        query(f"INSERT INTO hive.{schema}.people VALUES (1, 'ada'), (2, 'grace')")
        assert sorted(query(f"SELECT id, name FROM hive.{schema}.people")) == [[1, "ada"], [2, "grace"]]
        objects = [o for o in s3.list_objects(bucket, f"{prefix}people/", recursive=True) if o.size]
        assert objects, f"the INSERT wrote no data file under s3://{bucket}/{prefix}people/"
        query(f"DROP TABLE hive.{schema}.people")  # allowed: the catalog has hive.security=allow-all
    finally:
        remove_prefix(s3, bucket, prefix)
        query(f"DROP SCHEMA IF EXISTS hive.{schema}")


def test_trino_answers_on_its_nodeport_over_https_with_a_login(testbed):
    login = trino_login(testbed.config)
    url = trino_url(testbed.config, login, node_port=True)
    assert url.startswith("https://127.0.0.1:30081")
    status, body = probes.http_get(f"{url}/v1/info", ca=login.ca)
    assert status == 200 and json.loads(body)["starting"] is False
    rows = login.query(url, "SELECT count(*) FROM sales.public.customers")
    assert rows[0][0] >= 0


def test_a_misspelt_catalog_key_fails_with_trinos_own_error(testbed, tmp_path, query):
    """The harness catches a broken rendered file: a second Trino, given the rendered files with one
    key misspelt, refuses to start and the harness reports Trino's own message."""
    cfg = copy.deepcopy(testbed.config["trino"])
    hive = "/etc/trino/catalog/hive.properties"
    assert "\ns3.path-style-access=" in cfg["files"][hive]
    cfg["files"][hive] = cfg["files"][hive].replace("\ns3.path-style-access=", "\ns3.path-style-acess=")
    with pytest.raises(TestbedError, match="Configuration property 's3.path-style-acess' was not used"):
        trino.check_trino(cfg, tmp_path / "trino-broken")
    assert "trino-check" not in svc.status()
    assert query("SELECT 1") == [[1]]  # the testbed's own Trino is untouched


def test_drop_table_deletes_data(testbed, s3, query):
    """A table created empty and then filled by INSERT loses its data files with DROP TABLE. (Hive
    3.1.3's S3A saw its own directory marker and deleted only that; Hive 4.0.1 deletes the files.)"""
    bucket = testbed.config["s3"]["bucket"]
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"drop_{tag}", f"curated/drop_{tag}/"
    query(f"CREATE SCHEMA hive.{schema} WITH (location = 's3a://{bucket}/{prefix}')")
    try:
        query(f"CREATE TABLE hive.{schema}.t (id integer)")
        query(f"INSERT INTO hive.{schema}.t VALUES (1)")
        query(f"DROP TABLE hive.{schema}.t")
        left = [o.object_name for o in s3.list_objects(bucket, f"{prefix}t/", recursive=True)]
    finally:
        remove_prefix(s3, bucket, prefix)
        query(f"DROP SCHEMA IF EXISTS hive.{schema}")
    assert not left, f"DROP TABLE left {left}"
