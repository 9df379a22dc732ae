"""The trino role: the coordinator (and workers), its server config and its catalogs."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from kubernetes.utils.quantity import parse_quantity

from datamesh import inventory, role
from datamesh.errors import DatameshError
from tests.unit.helpers import by_kind, java_size, parse_properties, render, rendered_for


def trino_config(inv: inventory.Inventory) -> dict[str, str]:
    return by_kind(render("trino", inv), "ConfigMap")["trino-config"]["data"]


def test_trino_catalogs_have_exactly_the_expected_properties(docker_desktop):
    data = trino_config(docker_desktop)
    catalogs = {key.removeprefix("catalog-").removesuffix(".properties"): parse_properties(text)
                for key, text in data.items() if key.startswith("catalog-")}

    def jdbc(host: str, database: str, env: str) -> dict:
        return {
            "connector.name": "postgresql",
            "connection-url": f"jdbc:postgresql://{host}.svc.cluster.local:5432/{database}",
            "connection-user": f"${{ENV:{env}_DB_USER}}",
            "connection-password": f"${{ENV:{env}_DB_PASSWORD}}",
        }

    assert catalogs == {
        "sales": jdbc("postgres-sales.data-platform", "sales_db", "SALES"),
        "marketing": jdbc("postgres-marketing.data-platform", "marketing_db", "MARKETING"),
        "sales_domain": jdbc("postgres.sales-domain", "sales_domain", "SALES_DOMAIN"),
        "marketing_domain": jdbc("postgres.marketing-domain", "marketing_domain", "MARKETING_DOMAIN"),
        "hive": {
            "connector.name": "hive",
            "hive.metastore.uri": "thrift://hive-metastore.data-platform.svc.cluster.local:9083",
            "fs.native-s3.enabled": "true",
            "s3.endpoint": "http://minio.data-platform.svc.cluster.local:9000",
            "s3.region": "us-east-1",
            "s3.path-style-access": "true",
            "s3.aws-access-key": "${ENV:S3_ACCESS_KEY}",
            "s3.aws-secret-key": "${ENV:S3_SECRET_KEY}",
            "hive.non-managed-table-writes-enabled": "true",
            "hive.security": "allow-all",
        },
    }


def test_pinning_trino_435_renders_the_legacy_s3_keys_that_release_reads(write_inventory):
    inv = inventory.load(str(write_inventory("images: {trino: 'trinodb/trino:435'}\n")))
    hive = parse_properties(trino_config(inv)["catalog-hive.properties"])
    assert {k: v for k, v in hive.items() if "s3" in k} == {
        "hive.s3.endpoint": "http://minio.data-platform.svc.cluster.local:9000",
        "hive.s3.path-style-access": "true",
        "hive.s3.ssl.enabled": "false",
        "hive.s3.aws-access-key": "${ENV:S3_ACCESS_KEY}",
        "hive.s3.aws-secret-key": "${ENV:S3_SECRET_KEY}",
    }  # strictly valid: the trino-435 variant of tests/unit/test_invariants.py


@pytest.mark.parametrize("image, release", [
    ("trinodb/trino:476", 476), ("trinodb/trino:435", 435), ("registry.local:5000/trino:469", 469),
    ("trinodb/trino:476-arm64", 476),
])
def test_the_trino_release_is_read_from_the_image_tag(image, release):
    assert role.load("trino").module.release(image) == release


@pytest.mark.parametrize("image", ["trinodb/trino", "registry.local:5000/trino", "trinodb/trino:stable"])
def test_a_trino_image_without_a_release_tag_is_refused_by_name(image):
    with pytest.raises(DatameshError, match=r"images\.trino .*pin an exact release such as trinodb/trino:476"):
        role.load("trino").module.release(image)


def test_every_catalog_variable_comes_from_a_secret_the_platform_renders(docker_desktop):
    trino = by_kind(render("trino", docker_desktop), "Deployment")["trino-coordinator"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in trino["spec"]["template"]["spec"]["containers"][0]["env"]
           if "valueFrom" in e}
    referenced = set(re.findall(r"\$\{ENV:(\w+)\}", "".join(trino_config(docker_desktop).values())))
    assert referenced - {"HOSTNAME"} == set(env)
    secrets = {s["metadata"]["name"]: s for s in rendered_for("docker-desktop")["credentials"]
               if s["metadata"]["namespace"] == "data-platform"}
    for ref in env.values():
        assert ref["key"] in secrets[ref["name"]]["data"], ref
    assert env["SALES_DB_PASSWORD"] == {"name": "postgres-sales-credentials", "key": "reader-password"}
    assert env["SALES_DOMAIN_DB_PASSWORD"] == {"name": "trino-catalog-credentials", "key": "sales-domain-password"}
    assert env["S3_SECRET_KEY"] == {"name": "minio-credentials", "key": "root-password"}


def test_the_source_catalogs_read_with_the_reader_login_and_the_domain_catalogs_write_with_the_owner(docker_desktop):
    """Nothing through Trino changes the sources; dbt writes the domains' products through their catalogs."""
    logins = {c["catalog"]: (c["secret"], c["user_key"], c["password_key"])
              for c in role.load("trino").module.jdbc_catalogs(docker_desktop.vars)}
    assert logins == {
        "sales": ("postgres-sales-credentials", "reader-username", "reader-password"),
        "marketing": ("postgres-marketing-credentials", "reader-username", "reader-password"),
        "sales_domain": ("trino-catalog-credentials", "sales-domain-username", "sales-domain-password"),
        "marketing_domain": ("trino-catalog-credentials", "marketing-domain-username", "marketing-domain-password"),
    }


def test_trino_server_config_node_id_and_jvm(docker_desktop):
    data = trino_config(docker_desktop)
    assert parse_properties(data["coordinator.properties"]) == {
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true",
        "http-server.http.port": "8080",
        "discovery.uri": "http://trino-coordinator.data-platform.svc.cluster.local:8080",
        "query.max-memory": "1GB",
        "query.max-memory-per-node": "640MB",
        "http-server.https.enabled": "true",
        "http-server.https.port": "8443",
        "http-server.https.keystore.path": "/etc/trino-tls/tls.pem",
        "http-server.authentication.type": "PASSWORD",
        "http-server.authentication.allow-insecure-over-http": "false",
        "internal-communication.shared-secret": "${ENV:TRINO_SHARED_SECRET}",
    }
    node = parse_properties(data["node.properties"])
    assert node["node.id"] == "${ENV:HOSTNAME}" and re.fullmatch(r"[a-z0-9_]+", node["node.environment"])
    jvm = data["jvm.config"].splitlines()
    for flag in ("-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError", "-Djdk.attach.allowAttachSelf=true",
                 "-Dfile.encoding=UTF-8", "-XX:+EnableDynamicAgentLoading"):
        assert flag in jvm
    heap = java_size(next(f for f in jvm if f.startswith("-Xmx")).removeprefix("-Xmx"))
    container = by_kind(render("trino", docker_desktop), "Deployment")["trino-coordinator"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    limit = parse_quantity(container["resources"]["limits"]["memory"])
    assert heap <= limit - 512 * 2**20, "leave room for metaspace, code cache and thread stacks"
    per_node = java_size(docker_desktop["trino"]["query_max_memory_per_node"])
    assert per_node + heap * Decimal("0.3") < heap, "query memory plus the default 30% headroom must fit the heap"


def test_trino_is_ready_only_once_started(docker_desktop):
    container = by_kind(render("trino", docker_desktop), "Deployment")["trino-coordinator"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["exec"]["command"] == ["/usr/lib/trino/bin/health-check"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v1/info"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/etc/trino", "/etc/trino-users", "/etc/trino-tls"}


def test_people_log_in_with_passwords_over_https_only_and_rules_decide_what_they_may_do(docker_desktop):
    data = trino_config(docker_desktop)
    assert parse_properties(data["password-authenticator.properties"]) == {
        "password-authenticator.name": "file", "file.password-file": "/etc/trino-users/password.db"}
    assert parse_properties(data["access-control.properties"]) == {
        "access-control.name": "file", "security.config-file": "/etc/trino/rules.json"}
    rules = json.loads(data["rules.json"])
    assert {rule.get("user") for rule in rules["catalogs"]} >= {"admin", "sales", "marketing", "analyst"}
    objects = render("trino", docker_desktop)
    services = by_kind(objects, "Service")
    assert services["trino-coordinator"]["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["port"]) for p in services["trino-coordinator"]["spec"]["ports"]] == [("http", 8080), ("https", 8443)]
    assert [(p["port"], p.get("nodePort")) for p in services["trino-public"]["spec"]["ports"]] == [(8443, 30081)]
    pod = by_kind(objects, "Deployment")["trino-coordinator"]["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"users": "trino-users", "tls": "trino-tls"}


def test_without_trino_auth_trino_is_plain_http_on_its_nodeport_as_before(write_inventory):
    inv = inventory.load(str(write_inventory("security: {trino_auth: false}\n")))
    objects = render("trino", inv)
    config = by_kind(objects, "ConfigMap")["trino-config"]["data"]
    assert "access-control.properties" not in config and "https" not in config["coordinator.properties"]
    assert [(p["port"], p.get("nodePort")) for p in by_kind(objects, "Service")["trino-coordinator"]["spec"]["ports"]] == [(8080, 30081)]


def test_no_worker_deployment_by_default(docker_desktop):
    objects = render("trino", docker_desktop)
    assert set(by_kind(objects, "Deployment")) == {"trino-coordinator"}
    assert "worker.properties" not in trino_config(docker_desktop)


def test_workers_add_a_worker_deployment_and_free_the_coordinator(with_workers):
    objects = render("trino", with_workers)
    deployments = by_kind(objects, "Deployment")
    assert set(deployments) == {"trino-coordinator", "trino-worker"}
    assert deployments["trino-worker"]["spec"]["replicas"] == 2
    data = by_kind(objects, "ConfigMap")["trino-config"]["data"]
    assert parse_properties(data["coordinator.properties"])["node-scheduler.include-coordinator"] == "false"
    worker = parse_properties(data["worker.properties"])
    assert worker["coordinator"] == "false" and "node-scheduler.include-coordinator" not in worker
    assert worker["discovery.uri"] == "http://trino-coordinator.data-platform.svc.cluster.local:8080"

    def config_file(name: str) -> str:
        items = deployments[name]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
        return next(i["key"] for i in items if i["path"] == "config.properties")

    assert config_file("trino-coordinator") == "coordinator.properties"
    assert config_file("trino-worker") == "worker.properties"
    service = by_kind(objects, "Service")["trino-coordinator"]
    assert service["spec"]["selector"]["app.kubernetes.io/name"] == "trino-coordinator"
