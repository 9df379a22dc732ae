"""Trino's checks: started and answering SQL on its NodePort, every catalog listing its schemas, a
Hive table written and read back through the metastore and the object store, its pod's paths to
each database, the metastore and the object store, and after `invoke seed` the cross-domain join."""

import uuid

import pytest

from datamesh import probes
from datamesh.manifests import fqdn, platform

NEXT_STEP = "read `kubectl -n {platform} logs deploy/trino-coordinator --tail 50`, then run `invoke up --only trino`"
CATALOGS = [pg["key"].replace("-", "_") for pg in platform()["postgres"] if pg["key"] != "hive"] + ["hive"]
# what Trino's pod must reach: endpoint name -> (Service, namespace key, port)
PATHS = {f"postgres-{pg['key']}": (pg["name"], pg["namespace"], 5432) for pg in platform()["postgres"] if pg["key"] != "hive"}
PATHS.update({"hive-metastore": ("hive-metastore", "platform", 9083), "minio": ("minio", "platform", 9000)})


@pytest.fixture(scope="module")
def trino(nodeport):
    return nodeport("trino")


def test_info_says_it_has_started(trino):
    probes.trino_started(trino)


def test_select_1_answers(trino):
    assert probes.trino_query(trino, "SELECT 1") == [[1]]


@pytest.mark.parametrize("catalog", CATALOGS)
def test_each_catalog_lists_its_schemas(trino, catalog):
    schemas = {row[0] for row in probes.trino_query(trino, f"SHOW SCHEMAS FROM {catalog}")}
    assert "information_schema" in schemas, f"catalog {catalog} lists no schemas: {sorted(schemas)}"


@pytest.mark.next_step("check the metastore (`invoke verify --only hive-metastore`) and the bucket "
                       "(`invoke verify --only minio`), then Trino's log: `kubectl -n {platform} logs deploy/trino-coordinator`")
def test_a_hive_table_round_trips_through_the_metastore_and_the_object_store(trino, inventory):
    bucket = inventory["minio"]["bucket"]
    table = f"hive.datamesh_verify.round_trip_{uuid.uuid4().hex[:12]}"
    probes.trino_query(trino, "CREATE SCHEMA IF NOT EXISTS hive.datamesh_verify "
                              f"WITH (location = 's3a://{bucket}/_datamesh/verify/')")
    try:
        probes.trino_query(trino, f"CREATE TABLE {table} WITH (format = 'PARQUET') AS SELECT 42 AS answer, 'verify' AS note")
        assert probes.trino_query(trino, f"SELECT answer, note FROM {table}") == [[42, "verify"]]
    finally:
        probes.trino_query(trino, f"DROP TABLE IF EXISTS {table}")
        try:
            probes.trino_query(trino, "DROP SCHEMA IF EXISTS hive.datamesh_verify")
        except probes.ProbeError:
            pass  # another verify's table is still in it


@pytest.mark.parametrize("target", PATHS)
def test_its_pod_resolves_and_reaches(pod, inventory, target):
    service, namespace, port = PATHS[target]
    name = fqdn(service, inventory["namespaces"][namespace])
    inside = pod("trino")
    assert inside.addr(name).is_resolvable, f"Trino's pod cannot resolve {name}: is cluster DNS (CoreDNS) running?"
    assert inside.addr(name).port(port).is_reachable, f"Trino's pod resolves {name} but cannot connect to port {port}"


def test_the_cross_domain_join_of_customers_orders_and_leads_returns_rows(trino):
    present = probes.trino_query(trino, "SELECT count(*) FROM sales.information_schema.tables "
                                        "WHERE table_schema = 'public' AND table_name IN ('customers', 'orders')")
    if present != [[2]]:
        pytest.skip("the source databases hold no sample data yet: run `invoke seed`")
    rows = probes.trino_query(trino, """
        SELECT count(*) FROM sales.public.customers c
        JOIN sales.public.orders o ON o.customer_id = c.customer_id
        JOIN marketing.public.leads l ON lower(l.email) = lower(c.email)""")
    assert rows[0][0] > 0, "the join of sales customers and orders with marketing leads returned no rows: re-run `invoke seed`"
