"""Trino's checks: started and answering SQL on its NodePort (HTTPS and a password with
`security.trino_auth`), a wrong password and a forbidden read refused, every catalog listing its
schemas, a Hive table written and read back through the metastore and the object store, its pod's
paths to each database, the metastore and the object store, and after `invoke seed` the cross-domain join."""

import uuid

import pytest

from datamesh import probes
from datamesh.manifests import fqdn, platform
from datamesh.trino import Access, access

NEXT_STEP = "read `kubectl -n {platform} logs deploy/trino-coordinator --tail 50`, then run `invoke up --only trino`"
CATALOGS = [pg["key"].replace("-", "_") for pg in platform()["postgres"] if pg["key"] != "hive"] + ["hive"]
# what Trino's pod must reach: endpoint name -> (Service, namespace key, port)
PATHS = {f"postgres-{pg['key']}": (pg["name"], pg["namespace"], 5432) for pg in platform()["postgres"] if pg["key"] != "hive"}
PATHS.update({"hive-metastore": ("hive-metastore", "platform", 9083), "minio": ("minio", "platform", 9000)})


@pytest.fixture(scope="module")
def login(reach):
    return access(reach)


@pytest.fixture(scope="module")
def trino(nodeport, login):
    """The NodePort's URL; it serves HTTPS when people log in with passwords."""
    url = nodeport("trino")
    return login.scheme + url[url.index(":"):]


def test_info_says_it_has_started(trino, login):
    probes.trino_started(trino, ca=login.ca)


def test_select_1_answers(trino, login):
    assert login.query(trino, "SELECT 1") == [[1]]


@pytest.mark.next_step("compare the trino-users Secret's password.db with its passwords: `invoke up --only credentials,trino`")
def test_a_wrong_password_is_refused(trino, login):
    if login.password is None:
        pytest.skip("Trino takes no passwords here (security.trino_auth: false)")
    with pytest.raises(probes.LoginRefused):
        Access(login.user, login.password + "-wrong", login.ca).query(trino, "SELECT 1")


@pytest.mark.next_step("read the rules Trino runs with: `kubectl -n {platform} get configmap trino-config -o "
                       "jsonpath='{{.data.rules\\.json}}'`, then run `invoke up --only trino`")
def test_the_analyst_reads_no_source_database(trino, login, reach):
    if login.password is None:
        pytest.skip("Trino has no access rules here (security.trino_auth: false)")
    analyst = access(reach, "analyst")
    with pytest.raises(probes.ProbeError, match="Access Denied"):
        analyst.query(trino, "SELECT count(*) FROM sales.public.customers")


@pytest.mark.parametrize("catalog", CATALOGS)
def test_each_catalog_lists_its_schemas(trino, login, catalog):
    schemas = {row[0] for row in login.query(trino, f"SHOW SCHEMAS FROM {catalog}")}
    assert "information_schema" in schemas, f"catalog {catalog} lists no schemas: {sorted(schemas)}"


@pytest.mark.next_step("check the metastore (`invoke verify --only hive-metastore`) and the bucket "
                       "(`invoke verify --only minio`), then Trino's log: `kubectl -n {platform} logs deploy/trino-coordinator`")
def test_a_hive_table_round_trips_through_the_metastore_and_the_object_store(trino, login, inventory):
    bucket = inventory["minio"]["bucket"]
    table = f"hive.datamesh_verify.round_trip_{uuid.uuid4().hex[:12]}"
    login.query(trino, "CREATE SCHEMA IF NOT EXISTS hive.datamesh_verify "
                              f"WITH (location = 's3a://{bucket}/_datamesh/verify/')")
    try:
        login.query(trino, f"CREATE TABLE {table} WITH (format = 'PARQUET') AS SELECT 42 AS answer, 'verify' AS note")
        assert login.query(trino, f"SELECT answer, note FROM {table}") == [[42, "verify"]]
    finally:
        login.query(trino, f"DROP TABLE IF EXISTS {table}")
        try:
            login.query(trino, "DROP SCHEMA IF EXISTS hive.datamesh_verify")
        except probes.ProbeError:
            pass  # another verify's table is still in it


@pytest.mark.parametrize("target", PATHS)
def test_its_pod_resolves_and_reaches(pod, inventory, target):
    service, namespace, port = PATHS[target]
    name = fqdn(service, inventory["namespaces"][namespace])
    inside = pod("trino")
    assert inside.addr(name).is_resolvable, f"Trino's pod cannot resolve {name}: is cluster DNS (CoreDNS) running?"
    assert inside.addr(name).port(port).is_reachable, f"Trino's pod resolves {name} but cannot connect to port {port}"


def test_the_cross_domain_join_of_customers_orders_and_leads_returns_rows(trino, login):
    present = login.query(trino, "SELECT count(*) FROM sales.information_schema.tables "
                                        "WHERE table_schema = 'public' AND table_name IN ('customers', 'orders')")
    if present != [[2]]:
        pytest.skip("the source databases hold no sample data yet: run `invoke seed`")
    rows = login.query(trino, """
        SELECT count(*) FROM sales.public.customers c
        JOIN sales.public.orders o ON o.customer_id = c.customer_id
        JOIN marketing.public.leads l ON lower(l.email) = lower(c.email)""")
    assert rows[0][0] > 0, "the join of sales customers and orders with marketing leads returned no rows: re-run `invoke seed`"
