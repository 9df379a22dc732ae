"""The grafana role: provisioned PostgreSQL data sources and the sales and campaign dashboards.

Grafana's provisioning files are checked against its documented format, and the dashboards' SQL
in a real PostgreSQL with the seed schema, where one is installed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from datamesh import ROOT
from datamesh.manifests import platform
from tests.unit.helpers import env_of, find, pod_spec


def grafana_files() -> tuple[dict, dict, dict[str, dict]]:
    datasources = yaml.safe_load((ROOT / "files/grafana/datasources.yaml").read_text())
    providers = yaml.safe_load((ROOT / "files/grafana/dashboards.yaml").read_text())
    dashboards = {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "files/grafana/dashboards").glob("*.json"))}
    return datasources, providers, dashboards


ENV_REF = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)\}$")


def test_datasources_follow_grafanas_provisioning_format():
    datasources, _, _ = grafana_files()
    assert datasources["apiVersion"] == 1
    entries = datasources["datasources"]
    assert len(entries) == 4 and len({d["uid"] for d in entries}) == 4 and len({d["name"] for d in entries}) == 4
    databases = {pg["database"] for pg in platform()["postgres"]}
    for ds in entries:
        assert set(ds) <= {"name", "uid", "type", "access", "url", "user", "isDefault", "editable", "jsonData",
                           "secureJsonData", "orgId", "version"}, ds["name"]
        assert ds["type"] == "postgres" and ds["access"] == "proxy"
        assert ds["jsonData"]["database"] in databases
        assert ds["jsonData"]["sslmode"] == "disable"
        for value in (ds["url"], ds["user"], ds["secureJsonData"]["password"]):
            assert ENV_REF.match(value), f"{ds['name']}: {value!r} is not an environment lookup"
    assert sum(1 for d in entries if d.get("isDefault")) == 1
    assert {d["jsonData"]["database"] for d in entries} == {"sales_db", "marketing_db", "sales_domain", "marketing_domain"}


def test_every_datasource_variable_is_set_on_the_container_from_the_right_place(dd):
    datasources, _, _ = grafana_files()
    objects = dd["grafana"]
    container = pod_spec(find(objects, "Deployment", "grafana"))["containers"][0]
    env = env_of(container)
    wanted = {ENV_REF.match(v).group(1) for ds in datasources["datasources"]
              for v in (ds["url"], ds["user"], ds["secureJsonData"]["password"])}
    assert wanted <= set(env)
    assert env["SALES_DB_ADDRESS"]["value"] == "postgres-sales.data-platform.svc.cluster.local:5432"
    assert env["SALES_DOMAIN_DB_ADDRESS"]["value"] == "postgres.sales-domain.svc.cluster.local:5432"
    assert env["SALES_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "postgres-sales-credentials", "key": "reader-password"}
    copied = find(objects, "Secret", "grafana-datasource-credentials")
    assert env["MARKETING_DOMAIN_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "grafana-datasource-credentials", "key": "marketing-domain-reader-password"}
    assert env["GF_SECURITY_ADMIN_USER"]["valueFrom"]["secretKeyRef"] == {"name": "grafana-credentials", "key": "admin-user"}
    assert env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "grafana-credentials", "key": "admin-password"}
    # every key read from the copy Secret is rendered there, empty, and copied from a Secret the credentials role renders
    sources = {f"{s['metadata']['namespace']}/{s['metadata']['name']}:{k}" for s in dd["credentials"] for k in s["data"]}
    copies = dict(item.split("=", 1) for item in copied["metadata"]["annotations"]["datamesh.io/copy-keys"].split(","))
    assert set(copies) == set(copied["data"]) and set(copied["data"].values()) == {""}
    assert set(copies.values()) <= sources
    assert copies["sales-domain-reader-password"] == "sales-domain/postgres-credentials:reader-password"
    for item in env.values():
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] == "grafana-datasource-credentials":
            assert ref["key"] in copies


def test_copy_secret_is_filled_by_the_engine_from_the_domain_secrets(dd):
    from datamesh import diff
    known: dict[str, str] = {}
    for secret in dd["credentials"]:
        diff.fill_generated(secret, None, known)
    filled = diff.fill_generated(find(dd["grafana"], "Secret", "grafana-datasource-credentials"), None, known)
    assert base64.b64decode(filled["data"]["sales-domain-reader-password"]).decode() == "reader123"
    assert base64.b64decode(filled["data"]["marketing-domain-reader-username"]).decode() == "reader"


def test_every_datasource_logs_in_with_the_read_only_login_never_the_owner(dd):
    """Dashboards only read: the four data sources use the reader keys, whichever Secret holds them."""
    env = env_of(pod_spec(find(dd["grafana"], "Deployment", "grafana"))["containers"][0])
    copied = find(dd["grafana"], "Secret", "grafana-datasource-credentials")
    copies = dict(item.split("=", 1) for item in copied["metadata"]["annotations"]["datamesh.io/copy-keys"].split(","))
    for prefix in ("SALES", "MARKETING", "SALES_DOMAIN", "MARKETING_DOMAIN"):
        for suffix, key in (("USER", "reader-username"), ("PASSWORD", "reader-password")):
            ref = env[f"{prefix}_DB_{suffix}"]["valueFrom"]["secretKeyRef"]
            source = copies[ref["key"]].rpartition(":")[2] if ref["name"] == copied["metadata"]["name"] else ref["key"]
            assert source == key, (prefix, suffix, ref)


def test_dashboard_provider_points_at_the_mounted_dashboards(dd):
    _, providers, dashboards = grafana_files()
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["name"] and provider["orgId"] == 1
    container = pod_spec(find(dd["grafana"], "Deployment", "grafana"))["containers"][0]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[provider["options"]["path"]] == "dashboards"
    assert mounts["/etc/grafana/provisioning/datasources/datasources.yaml"] == "provisioning"
    assert mounts["/etc/grafana/provisioning/dashboards/dashboards.yaml"] == "provisioning"
    assert set(find(dd["grafana"], "ConfigMap", "grafana-dashboards")["data"]) == set(dashboards)
    assert {"sales-overview.json", "campaign-performance.json"} <= set(dashboards)


def test_dashboards_query_the_contract_tables_through_provisioned_datasources():
    datasources, _, dashboards = grafana_files()
    uids = {d["uid"] for d in datasources["datasources"]}
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards)
    for name, dashboard in dashboards.items():
        assert dashboard["title"] and dashboard["schemaVersion"] >= 36 and dashboard["panels"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids, (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids and target["rawQuery"] is True
                assert target["format"] in ("table", "time_series")
                assert target["rawSql"].lstrip().upper().startswith("SELECT")
    sales_sql = " ".join(t["rawSql"] for p in dashboards["sales-overview.json"]["panels"] for t in p["targets"])
    marketing_sql = " ".join(t["rawSql"] for p in dashboards["campaign-performance.json"]["panels"] for t in p["targets"])
    for column in ("orders", "customers", "total_amount", "order_date", "customer_name"):
        assert column in sales_sql
    for column in ("campaigns", "leads", "campaign_name", "budget", "channel", "source"):
        assert column in marketing_sql


def test_grafana_keeps_no_state_worth_keeping(dd):
    spec = pod_spec(find(dd["grafana"], "Deployment", "grafana"))
    assert {"name": "data", "emptyDir": {}} in spec["volumes"]
    assert not [o for o in dd["grafana"] if o["kind"] == "PersistentVolumeClaim"]
    container = spec["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/health"
    assert container["image"].startswith("grafana/grafana:10.")


# the dashboards' SQL in a real PostgreSQL, with the seed schema and a few rows

GRAFANA_MACROS = [
    (re.compile(r"\$__timeGroupAlias\((\w+(?:\.\w+)?),\s*\$__interval\)"),
     r'floor(extract(epoch from \1)/86400)*86400 AS "time"'),
    (re.compile(r"\$__timeFilter\((\w+(?:\.\w+)?)\)"),
     r"\1 BETWEEN '2020-01-01T00:00:00Z' AND '2030-01-01T00:00:00Z'"),
]


def expand_macros(sql: str) -> str:
    """Grafana's PostgreSQL macros as Grafana expands them, for a one-day interval."""
    for pattern, replacement in GRAFANA_MACROS:
        sql = pattern.sub(replacement, sql)
    assert "$__" not in sql, sql
    return sql


SAMPLE = {
    "sales_db": """
        INSERT INTO customers (customer_name, email, country, segment) VALUES
          ('Ada', 'ada@example.com', 'UK', 'enterprise'), ('Bo', 'bo@example.com', NULL, NULL);
        INSERT INTO orders (customer_id, order_date, total_amount, status) VALUES
          (1, '2025-01-05', 120.50, 'paid'), (1, '2025-02-01', 80, 'cancelled'), (2, '2025-02-03', 10, 'delivered');
    """,
    "marketing_db": """
        INSERT INTO campaigns (campaign_name, channel, budget, start_date) VALUES
          ('Spring', 'email', 1000, '2025-03-01'), ('Quiet', 'social', 0, '2025-04-01');
        INSERT INTO leads (email, source, campaign_id, status) VALUES
          ('a@example.com', 'web', 1, 'converted'), ('b@example.com', 'event', 1, 'new'), ('c@example.com', 'web', NULL, 'lost');
    """,
}


@pytest.fixture(scope="module")
def postgres_server():
    """A throwaway PostgreSQL (the one installed here), or a skip where there is none."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser to start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="datamesh-pg-"))
    os.chmod(base, 0o777)
    data, sock = base / "data", base
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = f"-c listen_addresses='' -c unix_socket_directories={sock} -p {port}"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"],
                   check=True, capture_output=True)
    try:
        yield {"host": str(sock), "port": port, "user": "postgres"}
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def make_reader(server: dict, database: str) -> None:
    """The postgres role's readonly Job's script, run as the Job runs it (the socket's trust login
    stands for the passwords)."""
    bin_dir = str(Path(os.path.realpath(shutil.which("initdb"))).parent)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "PGHOST": server["host"], "PGPORT": str(server["port"]),
           "PGDATABASE": database, "PGUSER": server["user"], "PGPASSWORD": "unused", "READER_USER": "reader",
           "READER_PASSWORD": "unused-too", "SCHEMAS": "public"}
    done = subprocess.run(["sh", str(ROOT / "files/postgres/readonly-role.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_sql_runs_on_the_seed_schema_as_the_read_only_login(postgres_server):
    """Every panel's query, as Grafana's data sources log in: the reader the readonly Job makes."""
    import psycopg2

    databases = {"postgres-sales": ("sales_db", "sql/sales_db.sql"), "postgres-marketing": ("marketing_db", "sql/marketing_db.sql")}
    admin = psycopg2.connect(dbname="postgres", **postgres_server)
    admin.autocommit = True
    with admin.cursor() as cur:
        for database, _ in databases.values():
            cur.execute(f"CREATE DATABASE {database}")
    admin.close()
    connections = {}
    for uid, (database, schema) in databases.items():
        with psycopg2.connect(dbname=database, **postgres_server) as owner, owner.cursor() as cur:
            cur.execute((ROOT / "files" / schema).read_text())
            cur.execute(SAMPLE[database])
        owner.close()
        make_reader(postgres_server, database)
        connections[uid] = psycopg2.connect(dbname=database, **{**postgres_server, "user": "reader"})
    _, _, dashboards = grafana_files()
    ran = 0
    for dashboard in dashboards.values():
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                conn = connections[target["datasource"]["uid"]]
                with conn.cursor() as cur:
                    cur.execute(expand_macros(target["rawSql"]))
                    rows = cur.fetchall()
                    columns = [d.name for d in cur.description]
                assert rows, (panel["title"], "returned no row on the sample data")
                if target["format"] == "time_series":
                    assert columns[0] == "time", panel["title"]
                ran += 1
    revenue = next(p for p in dashboards["sales-overview.json"]["panels"] if p["title"] == "Revenue")
    with connections["postgres-sales"].cursor() as cur:
        cur.execute(revenue["targets"][0]["rawSql"])
        assert cur.fetchone()[0] == Decimal("130.50")  # the cancelled order does not count
    with connections["postgres-sales"].cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cur.execute("DELETE FROM orders")
    for conn in connections.values():
        conn.close()
    assert ran >= 16
