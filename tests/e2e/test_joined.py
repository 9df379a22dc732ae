"""The joined testbed: the tool reaches the real programs through the API server, as on Docker Desktop.

Both testbeds run; testbed/joined.py makes each fake platform pod's ports forward to the native
program that stands for it (KWOK PortForward), its exec run on the host and its log show the
program's log. `invoke up --inventory testbed` converges, then every connection here goes through
datamesh/endpoints.py: a port-forward through the real kube-apiserver, with the login read from
the Secret, never a testbed shortcut.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from datamesh import probes
from datamesh.errors import DatameshError
from datamesh.manifests import platform
from datamesh.trino import access

POSTGRES = [f"postgres-{pg['key']}" for pg in platform()["postgres"]]


def test_up_converges_on_the_joined_testbed(joined):
    assert joined.totals.get("failed", 0) == 0


@pytest.mark.parametrize("name", POSTGRES)
def test_select_on_every_postgres_through_the_api_servers_port_forward(reach, name):
    login = reach.login(name)
    with reach.open(name) as (host, port):
        assert host == "127.0.0.1"
        rows = probes.postgres_query(host, port, login.user, login.password, login.database,
                                     "SELECT 1, current_database()")
    assert rows == [(1, login.database)]  # the instance the Service names, not a neighbour


def test_trino_show_catalogs_with_the_python_trino_client_over_https_with_a_password(reach, tmp_path):
    import requests
    import trino

    login = access(reach)
    ca = tmp_path / "trino-ca.crt"
    ca.write_text(login.ca)
    with reach.open("trino") as (host, port):
        session = requests.Session()  # as ~/scripts/utils.py: REQUESTS_CA_BUNDLE would win over verify (psf/requests#3829)
        session.verify, session.trust_env = str(ca), False
        conn = trino.dbapi.connect(host=host, port=port, user=login.user, catalog="system", http_scheme="https",
                                   auth=trino.auth.BasicAuthentication(login.user, login.password), http_session=session)
        try:
            cur = conn.cursor()
            cur.execute("SHOW CATALOGS")
            catalogs = {row[0] for row in cur.fetchall()}
        finally:
            conn.close()
    assert {"sales", "marketing", "hive", "sales_domain", "marketing_domain"} <= catalogs


def test_object_store_put_get_round_trip_with_the_login_from_its_secret(reach):
    import io

    login = reach.login("minio")
    bucket = reach.inventory["minio"]["bucket"]
    key = f"processed/joined-{uuid.uuid4().hex}.txt"
    payload = b"through the API server\n" * 1000
    with reach.open("minio") as (host, port):
        s3 = probes.s3_client(f"{host}:{port}", login.user, login.password)
        s3.put_object(bucket, key, io.BytesIO(payload), len(payload))
        try:
            response = s3.get_object(bucket, key)
            assert response.read() == payload
            response.close()
        finally:
            s3.remove_object(bucket, key)


def test_twenty_concurrent_queries_through_one_forward_while_http_goes_through_another(reach):
    login = reach.login("postgres-sales")
    barrier = threading.Barrier(20, timeout=60)
    pids, errors, polls = [], [], []

    def query(host: str, port: int) -> None:
        import psycopg2

        try:
            conn = psycopg2.connect(host=host, port=port, user=login.user, password=login.password,
                                    dbname=login.database, connect_timeout=10)
            try:
                barrier.wait()  # all twenty connections are open at once
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_backend_pid() FROM pg_sleep(0.2)")
                    pids.append(cur.fetchone()[0])
            finally:
                conn.close()
        except Exception as exc:  # collected, then asserted in the main thread
            errors.append(exc)

    trino_ca = access(reach).ca
    with reach.open("postgres-sales") as (host, port), reach.open("trino") as (trino_host, trino_port):
        threads = [threading.Thread(target=query, args=(host, port)) for _ in range(20)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            polls.append(probes.http_get(f"https://{trino_host}:{trino_port}/v1/info", ca=trino_ca)[0])
        for thread in threads:
            thread.join()
    assert not errors, errors[:3]
    assert len(set(pids)) == 20  # twenty backends: one stream per connection
    assert polls and set(polls) == {200}


def test_a_forward_to_a_pod_that_is_then_deleted_fails_with_one_sentence_within_timeouts_api(reach, kubectl):
    api_timeout = reach.inventory["timeouts"]["api"]
    namespace = reach.namespace("dbt-docs")
    with pytest.raises(DatameshError) as failure:
        with reach.open("dbt-docs") as (host, port):
            pod, _ = reach.pod("dbt-docs")
            assert probes.http_get(f"http://{host}:{port}/")[0] == 200
            kubectl("-n", namespace, "delete", "pod", pod["metadata"]["name"], "--grace-period=0", "--force", "--wait=true")
            start = time.monotonic()
            try:
                probes.http_get(f"http://{host}:{port}/", timeout=api_timeout * 3)
            finally:
                elapsed = time.monotonic() - start
    message = str(failure.value)
    assert message.startswith(f"the port-forward to Service {namespace}/dbt-docs through pod {pod['metadata']['name']} failed: the pod is gone")
    assert "\n" not in message
    assert elapsed < api_timeout  # a bound the issue sets on the failure, not a speed target
    # the Deployment's replacement is linked in turn, and a new forward reaches nginx again
    deadline = time.monotonic() + 60
    while True:
        try:
            with reach.open("dbt-docs") as (host, port):
                assert probes.http_get(f"http://{host}:{port}/")[0] == 200
            break
        except DatameshError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_kubectl_exec_into_a_platform_pod_runs_a_command_where_in_cluster_names_resolve(kubectl):
    out = kubectl("-n", "data-platform", "exec", "deploy/trino-coordinator", "--",
                  "getent", "hosts", "postgres-sales.data-platform.svc.cluster.local")
    assert "postgres-sales.data-platform.svc.cluster.local" in out


def test_kubectl_logs_show_the_program_behind_the_pod_or_say_it_is_not_run(joined, kubectl):
    deadline = time.monotonic() + 30
    while "SERVER STARTED" not in (trino_log := kubectl("-n", "data-platform", "logs", "deploy/trino-coordinator", check=False)):
        assert time.monotonic() < deadline, trino_log[-2000:]
        time.sleep(1)
    grafana_log = kubectl("-n", "data-platform", "logs", "deploy/grafana")
    assert "does not run grafana" in grafana_log.lower()


def test_status_check_uses_every_service_through_the_api_server(joined, datamesh):
    run = datamesh("status", "--inventory", "testbed", "--check", "--skip", "grafana")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    lines = [line.split() for line in run.stdout.splitlines() if line.startswith("  ") and len(line.split()) > 2]
    checked = {words[0] for words in lines if words[1] == "ok"}
    assert set(POSTGRES) | {"trino", "minio", "hive-metastore", "jupyterhub", "dbt-docs"} <= checked


def test_status_check_names_the_service_that_does_not_answer(joined, datamesh):
    run = datamesh("status", "--inventory", "testbed", "--check", "--only", "namespaces,credentials,grafana")
    assert run.returncode == 3
    failed = [line for line in run.stdout.splitlines() if line.split()[:2] == ["grafana", "FAILED"]]
    assert failed and "Service data-platform/grafana" in failed[0], run.stdout[-2000:]

