"""The application roles: JupyterHub, Grafana and the dbt docs site, and the user image behind them.

Rendering is checked against what the programs expect: JupyterHub's config file is executed
with the environment the hub Deployment gives it, Grafana's provisioning files against its
documented format (and the dashboards' SQL in a real PostgreSQL with the seed schema, where one
is installed), nginx's config against the mounts and probes around it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from datamesh import ROOT, budget, images, inventory
from datamesh.errors import DatameshError
from datamesh.manifests import platform
from tests.unit.conftest import rendered_for

APPS = ("jupyterhub", "grafana", "dbt-docs")
GiB = 2**30


@pytest.fixture(scope="module")
def dd() -> dict[str, list[dict]]:
    return rendered_for("docker-desktop")


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} found"
    return matches[0]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


# -- every application workload -------------------------------------------------------------

@pytest.mark.parametrize("role", APPS)
def test_workloads_are_non_root_probed_sized_and_pinned(dd, role):
    workloads = [o for o in dd[role] if o["kind"] == "Deployment"]
    assert workloads
    for workload in workloads:
        spec = pod_spec(workload)
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert workload["spec"]["selector"]["matchLabels"].items() <= workload["spec"]["template"]["metadata"]["labels"].items()
        for container in spec["containers"]:
            assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
            assert container["readinessProbe"]["httpGet"] and container["livenessProbe"]["httpGet"]
            assert set(container["resources"]) == {"requests", "limits"}
            image = container["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), image


def test_nodeports_come_from_the_one_table(dd):
    ports = {(s["metadata"]["name"], p["port"]): p["nodePort"]
             for role in APPS for s in dd[role] if s["kind"] == "Service" and s["spec"]["type"] == "NodePort"
             for p in s["spec"]["ports"]}
    assert ports == {("proxy-public", 80): 30080, ("grafana", 3000): 30083, ("dbt-docs", 80): 30084}


def test_a_different_nodeport_table_moves_the_services(write_inventory):
    path = write_inventory("nodeports: {jupyterhub: 31080, grafana: 31083, dbt-docs: 31084}\n")
    inv = inventory.load(str(path))
    from datamesh import playbook
    roles = {r.name: r for r in playbook.load("up").roles}
    ports = {p["nodePort"] for name in APPS for s in roles[name].render(inv.vars)
             if s["kind"] == "Service" and s["spec"]["type"] == "NodePort" for p in s["spec"]["ports"]}
    assert ports == {31080, 31083, 31084}


# -- JupyterHub -----------------------------------------------------------------------------

def test_jupyterhub_objects(dd):
    objects = dd["jupyterhub"]
    assert {o["metadata"]["namespace"] for o in objects} == {"jupyterhub"}
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == sorted([
        ("ConfigMap", "hub-config"), ("ServiceAccount", "hub"), ("Role", "hub"), ("RoleBinding", "hub"),
        ("PersistentVolumeClaim", "hub-db"), ("Service", "hub"), ("Service", "proxy-api"),
        ("Service", "proxy-public"), ("Deployment", "proxy"), ("Deployment", "hub"),
    ])
    claim = find(objects, "PersistentVolumeClaim", "hub-db")
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    services = {s["metadata"]["name"]: s["spec"] for s in objects if s["kind"] == "Service"}
    assert services["hub"]["type"] == "ClusterIP" and services["hub"]["ports"][0]["port"] == 8081
    assert services["proxy-api"]["type"] == "ClusterIP" and services["proxy-api"]["ports"][0]["port"] == 8001
    assert services["proxy-public"]["ports"][0] == {"name": "http", "port": 80, "targetPort": "http",
                                                   "protocol": "TCP", "nodePort": 30080}
    assert services["hub"]["selector"]["app.kubernetes.io/name"] == "hub"
    assert services["proxy-api"]["selector"] == services["proxy-public"]["selector"]


def test_hub_rbac_stays_in_its_namespace_and_grants_what_kubespawner_uses(dd):
    objects = dd["jupyterhub"]
    role, binding = find(objects, "Role", "hub"), find(objects, "RoleBinding", "hub")
    assert not any(o["kind"].startswith("Cluster") for o in objects)
    grants = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
              for resource in rule["resources"] for verb in rule["verbs"]}
    for resource in ("pods", "persistentvolumeclaims"):
        for verb in ("get", "watch", "list", "create", "delete"):
            assert ("", resource, verb) in grants
    assert {("", "events", v) for v in ("get", "watch", "list")} <= grants
    assert not any("*" in g or r in ("secrets", "roles", "rolebindings") for g, r, _ in grants)
    assert not any(r == "events" and v not in ("get", "watch", "list") for _, r, v in grants)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hub"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub", "namespace": "jupyterhub"}]
    assert pod_spec(find(objects, "Deployment", "hub"))["serviceAccountName"] == "hub"
    assert pod_spec(find(objects, "Deployment", "proxy"))["automountServiceAccountToken"] is False


def test_hub_runs_our_config_file_from_the_configmap(dd):
    objects = dd["jupyterhub"]
    config = find(objects, "ConfigMap", "hub-config")["data"]["jupyterhub_config.py"]
    assert config == (ROOT / "files/jupyterhub/jupyterhub_config.py").read_text()
    hub = find(objects, "Deployment", "hub")
    container = pod_spec(hub)["containers"][0]
    assert container["image"] == "quay.io/jupyterhub/k8s-hub:3.3.8"
    assert "command" not in container and "args" not in container  # the image runs the file we mount
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/usr/local/etc/jupyterhub/jupyterhub_config.py"]["subPath"] == "jupyterhub_config.py"
    volumes = {v["name"]: v for v in pod_spec(hub)["volumes"]}
    assert volumes[mounts["/srv/jupyterhub"]["name"]]["persistentVolumeClaim"]["claimName"] == "hub-db"
    assert hub["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_spec(hub)["securityContext"]["runAsUser"] == 1000
    assert container["readinessProbe"]["httpGet"] == {"path": "/hub/health", "port": "http"}
    assert "datamesh.io/config-sha256" in hub["spec"]["template"]["metadata"]["annotations"]


def test_proxy_is_its_own_deployment_sharing_the_token(dd):
    objects = dd["jupyterhub"]
    proxy = find(objects, "Deployment", "proxy")
    container = pod_spec(proxy)["containers"][0]
    assert container["image"] == "quay.io/jupyterhub/configurable-http-proxy:4.6.1"
    assert pod_spec(proxy)["securityContext"]["runAsUser"] == 65534
    args = container["command"]
    assert args[0] == "configurable-http-proxy"
    assert "--api-port=8001" in args and "--port=8000" in args
    assert "--default-target=http://hub.jupyterhub.svc.cluster.local:8081" in args
    assert container["readinessProbe"]["httpGet"] == {"path": "/_chp_healthz", "port": "http"}
    hub = pod_spec(find(objects, "Deployment", "hub"))["containers"][0]
    for c in (container, hub):
        assert env_of(c)["CONFIGPROXY_AUTH_TOKEN"]["valueFrom"] == {
            "secretKeyRef": {"name": "jupyterhub-credentials", "key": "proxy-auth-token"}}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "api": 8001}


class _Config:
    """JupyterHub's `c`: any attribute path can be set and read back."""

    def __init__(self):
        object.__setattr__(self, "_values", {})

    def __getattr__(self, name):
        return self._values.setdefault(name, _Config())

    def __setattr__(self, name, value):
        self._values[name] = value


def load_hub_config(deployment: dict, secrets: dict[str, str]) -> _Config:
    """Execute jupyterhub_config.py with the environment the hub container would have."""
    container = pod_spec(deployment)["containers"][0]
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item["valueFrom"]:
            env[item["name"]] = secrets[item["valueFrom"]["secretKeyRef"]["key"]]
        else:
            env[item["name"]] = deployment["metadata"]["namespace"]  # the fieldRef to the namespace
    config = _Config()
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        code = compile((ROOT / "files/jupyterhub/jupyterhub_config.py").read_text(), "jupyterhub_config.py", "exec")
        exec(code, {"get_config": lambda: config, "__name__": "__main__"})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return config


def credentials(dd: dict, name: str) -> dict[str, str]:
    secret = find(dd["credentials"], "Secret", name)
    return {k: base64.b64decode(v).decode() or f"generated-{k}" for k, v in secret["data"].items()}


def test_hub_config_as_jupyterhub_would_load_it(dd):
    c = load_hub_config(find(dd["jupyterhub"], "Deployment", "hub"), credentials(dd, "jupyterhub-credentials"))
    assert c.JupyterHub.hub_ip == "0.0.0.0" and c.JupyterHub.hub_port == 8081
    assert c.JupyterHub.hub_connect_ip == "hub.jupyterhub.svc.cluster.local"
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.api_url == "http://proxy-api.jupyterhub.svc.cluster.local:8001"
    assert c.ConfigurableHTTPProxy.auth_token == "generated-proxy-auth-token"
    assert c.JupyterHub.authenticator_class == "dummy"
    assert c.DummyAuthenticator.password == "admin"  # docker-desktop's lab login, from the Secret
    assert c.Authenticator.admin_users == {"admin"} and c.Authenticator.allowed_users == {"admin"}
    assert c.JupyterHub.spawner_class == "kubespawner.KubeSpawner"
    assert c.KubeSpawner.namespace == "jupyterhub"
    assert c.KubeSpawner.image == "quay.io/jupyter/minimal-notebook:hub-4.1.3"  # until `invoke images` ran
    assert c.KubeSpawner.pvc_name_template.format(username="admin") == "claim-admin"
    assert c.KubeSpawner.storage_capacity == "5Gi"
    assert c.KubeSpawner.volumes[0]["persistentVolumeClaim"]["claimName"] == c.KubeSpawner.pvc_name_template
    assert c.KubeSpawner.volume_mounts[0]["mountPath"] == "/home/jovyan"
    assert (c.KubeSpawner.cpu_guarantee, c.KubeSpawner.mem_guarantee) == (0.25, GiB)
    assert (c.KubeSpawner.cpu_limit, c.KubeSpawner.mem_limit) == (2.0, 2 * GiB)
    assert c.KubeSpawner.uid == 1000 and c.KubeSpawner.allow_privilege_escalation is False
    assert c.KubeSpawner.pod_security_context["runAsNonRoot"] is True
    assert c.KubeSpawner.extra_labels["app.kubernetes.io/part-of"] == "datamesh"
    assert c.KubeSpawner.environment["TRINO_HOST"] == "trino-coordinator.data-platform.svc.cluster.local"


def test_config_file_holds_no_credential_and_names_no_namespace():
    text = (ROOT / "files/jupyterhub/jupyterhub_config.py").read_text()
    assert "admin123" not in text and "svc.cluster.local" in text
    assert not re.search(r"\b(jupyterhub|data-platform)\.svc", text)  # namespaces come from the environment


def test_users_get_the_fallback_image_where_the_built_one_cannot_reach(write_inventory):
    inv = inventory.load(str(write_inventory("jupyterhub: {use_built_image: false}\n")))
    from datamesh import playbook
    role = next(r for r in playbook.load("up").roles if r.name == "jupyterhub")
    hub = find(role.render(inv.vars), "Deployment", "hub")
    image = env_of(pod_spec(hub)["containers"][0])["DATAMESH_USER_IMAGE"]["value"]
    assert image == inv["images"]["jupyterhub-user-fallback"]
    assert re.fullmatch(r"quay\.io/jupyter/minimal-notebook:[\w.-]+", image) and not image.endswith(":latest")


def test_storage_class_reaches_the_hub_volume_and_the_user_volumes(write_inventory):
    inv = inventory.load(str(write_inventory("storage: {class: fast}\n")))
    from datamesh import playbook
    role = next(r for r in playbook.load("up").roles if r.name == "jupyterhub")
    objects = role.render(inv.vars)
    assert find(objects, "PersistentVolumeClaim", "hub-db")["spec"]["storageClassName"] == "fast"
    c = load_hub_config(find(objects, "Deployment", "hub"), {"proxy-auth-token": "t", "admin-user": "a", "admin-password": "p"})
    assert c.KubeSpawner.storage_class == "fast"


# -- the budget preflight counts the user server ---------------------------------------------

def test_hub_declares_the_user_server_requests(dd):
    hub = find(dd["jupyterhub"], "Deployment", "hub")
    assert hub["metadata"]["annotations"]["datamesh.io/extra-requests"] == "cpu=250m,memory=1Gi"
    assert budget.extra_requests(hub) == {"cpu": Decimal("0.25"), "memory": Decimal(GiB)}
    assert budget.extra_requests(hub, budget.EXTRA_LIMITS) == {"cpu": Decimal(2), "memory": Decimal(2 * GiB)}
    own = budget.requested([hub])
    assert own == {"cpu": Decimal("0.35"), "memory": Decimal(GiB + 256 * 2**20)}  # the hub itself plus one server


def test_extra_requests_count_for_any_object_and_refuse_nonsense():
    annotated = {"kind": "ConfigMap", "metadata": {"name": "x", "annotations": {"datamesh.io/extra-requests": "memory=512Mi"}}}
    assert budget.requested([annotated]) == {"cpu": Decimal(0), "memory": Decimal(512 * 2**20)}
    assert budget.extra_requests({"kind": "Deployment", "metadata": {"name": "y"}}) == {"cpu": 0, "memory": 0}
    for bad in ("cpu", "gpu=1", "cpu=lots", "memory=1Gi,cpu"):
        obj = {"kind": "Deployment", "metadata": {"name": "hub", "namespace": "jupyterhub",
                                                  "annotations": {"datamesh.io/extra-requests": bad}}}
        with pytest.raises(DatameshError, match="Deployment jupyterhub/hub has annotation datamesh.io/extra-requests"):
            budget.extra_requests(obj)


def test_platform_and_the_admins_server_fit_a_default_docker_desktop(dd):
    want = budget.requested([o for objects in dd.values() for o in objects])
    # Docker Desktop's default VM: 8 GiB, of which its node offers about 7.7 GiB; its system pods ask ~0.85 CPU, 300Mi.
    allocatable, used = budget.free([{"status": {"allocatable": {"cpu": "8", "memory": "7.7Gi"}}}],
                                    [{"spec": {"containers": [{"resources": {"requests": {"cpu": "850m", "memory": "300Mi"}}}]}}])
    budget.check(want, allocatable, used, inventory.load("docker-desktop"))
    apps = budget.requested([o for role in APPS for o in dd[role]])
    assert apps["memory"] < Decimal("1.5") * GiB and apps["cpu"] < 1


# -- Grafana --------------------------------------------------------------------------------

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
    assert env["SALES_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "postgres-sales-credentials", "key": "password"}
    copied = find(objects, "Secret", "grafana-datasource-credentials")
    assert env["MARKETING_DOMAIN_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "grafana-datasource-credentials", "key": "marketing-domain-password"}
    assert env["GF_SECURITY_ADMIN_USER"]["valueFrom"]["secretKeyRef"] == {"name": "grafana-credentials", "key": "admin-user"}
    assert env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "grafana-credentials", "key": "admin-password"}
    # every key read from the copy Secret is rendered there, empty, and copied from a Secret the credentials role renders
    sources = {f"{s['metadata']['namespace']}/{s['metadata']['name']}:{k}" for s in dd["credentials"] for k in s["data"]}
    copies = dict(item.split("=", 1) for item in copied["metadata"]["annotations"]["datamesh.io/copy-keys"].split(","))
    assert set(copies) == set(copied["data"]) and set(copied["data"].values()) == {""}
    assert set(copies.values()) <= sources
    assert copies["sales-domain-password"] == "sales-domain/postgres-credentials:password"
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
    assert base64.b64decode(filled["data"]["sales-domain-password"]).decode() == "admin123"
    assert base64.b64decode(filled["data"]["marketing-domain-username"]).decode() == "admin"


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


def test_dashboard_sql_runs_on_the_seed_schema(postgres_server):
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
        conn = psycopg2.connect(dbname=database, **postgres_server)
        with conn, conn.cursor() as cur:
            cur.execute((ROOT / "files" / schema).read_text())
            cur.execute(SAMPLE[database])
        connections[uid] = conn
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
    for conn in connections.values():
        conn.close()
    assert ran >= 16


# -- dbt docs -------------------------------------------------------------------------------

def test_dbt_docs_objects_and_mounts(dd):
    objects = dd["dbt-docs"]
    assert {o["metadata"]["namespace"] for o in objects} == {"data-platform"}
    claim = find(objects, "PersistentVolumeClaim", "dbt-docs-site")
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    service = find(objects, "Service", "dbt-docs")["spec"]
    assert service["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": 30084}]
    deployment = find(objects, "Deployment", "dbt-docs")
    spec = pod_spec(deployment)
    container = spec["containers"][0]
    assert re.fullmatch(r"nginxinc/nginx-unprivileged:1\.\d+\.\d+-alpine[\d.]*", container["image"])
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert spec["securityContext"]["runAsUser"] == 101
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert volumes[mounts["/usr/share/nginx/html"]["name"]]["persistentVolumeClaim"]["claimName"] == "dbt-docs-site"
    assert volumes[mounts["/usr/share/nginx/placeholder"]["name"]]["configMap"]["name"] == "dbt-docs-placeholder"
    conf = mounts["/etc/nginx/conf.d/default.conf"]
    assert volumes[conf["name"]]["configMap"]["name"] == "dbt-docs-config" and conf["subPath"] == "default.conf"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert find(objects, "ConfigMap", "dbt-docs-config")["data"]["default.conf"] == (ROOT / "files/dbt-docs/default.conf").read_text()
    assert find(objects, "ConfigMap", "dbt-docs-placeholder")["data"]["placeholder.html"] == \
        (ROOT / "files/dbt-docs/placeholder.html").read_text()


def test_nginx_config_serves_the_docs_or_the_placeholder(dd):
    conf = (ROOT / "files/dbt-docs/default.conf").read_text()
    code = "\n".join(line.split("#")[0] for line in conf.splitlines())
    assert re.search(r"listen\s+8080;", code) and "user " not in code
    assert re.search(r"root\s+/usr/share/nginx/html;", code)
    assert re.search(r"location = / \{[^}]*try_files /index.html @placeholder;", code)
    assert re.search(r"location @placeholder \{[^}]*root /usr/share/nginx/placeholder;[^}]*try_files /placeholder.html =404;", code)
    probe = pod_spec(find(dd["dbt-docs"], "Deployment", "dbt-docs"))["containers"][0]["readinessProbe"]["httpGet"]
    assert re.search(r"location = %s \{[^}]*return 200" % re.escape(probe["path"]), code)
    assert code.count("{") == code.count("}")


def test_placeholder_says_how_to_generate_the_docs():
    page = (ROOT / "files/dbt-docs/placeholder.html").read_text()
    assert "not been generated yet" in page
    for hint in ("invoke seed", "dbt docs generate", "index.html", "manifest.json", "catalog.json"):
        assert hint in page


# -- the user image -------------------------------------------------------------------------

IMAGE = ROOT / "files/images/jupyterhub-dbt"


def test_user_image_is_pinned_and_brings_the_tools():
    dockerfile = (IMAGE / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)$", dockerfile, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base)
    server = inventory.load("docker-desktop")["images"]["trino"].rpartition(":")[2]
    assert re.search(rf"^ARG TRINO_VERSION={server}$", dockerfile, re.M), "the CLI matches the server's release"
    assert "sha1sum -c" in dockerfile  # the Trino CLI against Maven Central's checksum
    assert "dl.min.io" not in dockerfile and "mc --version" not in dockerfile  # MinIO's download site answers 410
    assert re.search(r"&& aws --version", dockerfile)  # the S3 command line, from PyPI (requirements.txt)
    assert re.search(r"^USER 1000$", dockerfile, re.M) and 'CMD ["jupyterhub-singleuser"]' in dockerfile
    assert "latest" not in dockerfile
    requirements = [l for l in (IMAGE / "requirements.txt").read_text().splitlines() if l and not l.startswith("#")]
    pins = dict(l.split("==") for l in requirements)
    assert len(pins) == len(requirements)
    assert {"jupyterlab", "dbt-core", "dbt-trino", "jupyterlab-git", "jupyter-scheduler", "trino", "minio",
            "awscli"} <= set(pins)
    assert pins["jupyterhub"] == "4.1.6"  # what quay.io/jupyterhub/k8s-hub:3.3.8 runs
    locked = [l for l in (IMAGE / "constraints.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert all(re.fullmatch(r"[\w.-]+==[\w.+-]+", l) for l in locked)
    lock = {name.lower().replace("_", "-"): v for name, v in (l.split("==") for l in locked)}
    for name, version in pins.items():
        assert lock[name] == version, name


class Runs:
    """Records commands; `docker info` answers as told, every other command succeeds."""

    def __init__(self, engine: bool):
        self.engine, self.commands = engine, []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        ok = self.engine or command[:2] != ["docker", "info"]
        return subprocess.CompletedProcess(command, 0 if ok else 1, "", "")


def build_with(name_or_path, engine=True, installed=True):
    runs, said = Runs(engine), []
    images.build(inventory.load(name_or_path), said.append, runs, lambda tool: f"/usr/bin/{tool}" if installed else None)
    return runs.commands[1:], said


def test_images_builds_then_loads_into_kind_or_k3d():
    context = str(IMAGE)
    commands, _ = build_with("kind")
    assert commands == [["docker", "build", "--tag", "jupyterhub-dbt:1.0.0", context],
                        ["kind", "load", "docker-image", "jupyterhub-dbt:1.0.0", "--name", "datamesh"]]
    commands, _ = build_with("k3d")
    assert commands[1] == ["k3d", "image", "import", "jupyterhub-dbt:1.0.0", "--cluster", "datamesh"]
    commands, _ = build_with("minikube")
    assert commands[1] == ["minikube", "image", "load", "jupyterhub-dbt:1.0.0", "--profile", "minikube"]
    commands, said = build_with("docker-desktop")
    assert commands == [["docker", "build", "--tag", "jupyterhub-dbt:1.0.0", context]]
    assert "ready" in said[-1]


def test_images_without_an_engine_says_so_in_one_sentence():
    with pytest.raises(DatameshError) as caught:
        build_with("kind", engine=False)
    message = str(caught.value)
    assert message.startswith("no Docker engine answers here (`docker info` failed)")
    assert "jupyterhub.use_built_image: false" in message and "minimal-notebook" in message
    assert message.count(". ") == 0 and message.endswith(".")


def test_images_on_a_cluster_that_cannot_take_a_local_image(write_inventory):
    commands, said = build_with("remote.example")  # use_built_image: false there
    assert commands == [["docker", "build", "--tag", "jupyterhub-dbt:1.0.0", str(IMAGE)]]
    assert "users still get quay.io/jupyter/minimal-notebook" in said[-1]
    path = write_inventory("cluster: {context: prod}\njupyterhub: {use_built_image: true}\n")
    with pytest.raises(DatameshError, match="pulls its images from a registry"):
        build_with(str(path))


def test_images_names_a_missing_loader():
    with pytest.raises(DatameshError, match="`docker` is not installed"):
        build_with("kind", installed=False)


def test_images_task_exits_non_zero_where_no_engine_answers(tmp_path):
    """The real command with no docker on PATH: nothing can be built, and it says so."""
    result = subprocess.run([sys.executable, "-m", "invoke", "images", "--inventory", "kind"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode != 0
    assert "error: no Docker engine answers here" in result.stderr and "Traceback" not in result.stderr


# -- inventories ----------------------------------------------------------------------------

@pytest.mark.parametrize("name,context", [("kind", "kind-datamesh"), ("k3d", "k3d-datamesh"), ("minikube", "minikube")])
def test_local_cluster_inventories(name, context):
    inv = inventory.load(name)
    assert inv["cluster"]["context"] == context
    assert inv["cluster"]["hint"] != inventory.load_defaults()["cluster"]["hint"]
    assert inv["credentials"]["policy"] == "generate"
    assert inv["hosts"]["nodeports"] == "local"
    assert inv["jupyterhub"]["use_built_image"] is False  # a fresh `up` works before `invoke images`
    assert inv["hosts"]["address"] == ("localhost" if name in ("kind", "k3d") else "192.168.49.2")


def test_remote_example_reaches_the_nodeports_over_ssh():
    inv = inventory.load("remote.example")
    assert inv["hosts"]["nodeports"].startswith("ssh://")
    assert inv["credentials"]["policy"] == "generate"
    assert inv["jupyterhub"]["use_built_image"] is False
