"""Rendered manifests: strictly valid Kubernetes, labelled as ours, and free of secret literals."""

from __future__ import annotations

import re

import pytest
import kubernetes_validate
import yaml

from datamesh import playbook
from tests.unit.conftest import rendered_for

OLDEST, NEWEST = "1.29.0", kubernetes_validate.utils.latest_version() + ".0"


def all_objects(rendered: dict[str, list[dict]]) -> list[dict]:
    return [obj for objects in rendered.values() for obj in objects]


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_every_object_is_strictly_valid(rendered, version):
    for obj in all_objects(rendered):
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_catches_a_misspelt_field():
    obj = rendered_for("docker-desktop")["postgres"][2]
    obj["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, NEWEST, strict=True)


def test_every_object_carries_our_labels(rendered):
    for role, objects in rendered.items():
        for obj in objects:
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "datamesh"
            assert labels["app.kubernetes.io/part-of"] == "datamesh"
            assert labels["app.kubernetes.io/component"] == role


def test_namespaces_are_labelled_with_their_domain():
    namespaces = {ns["metadata"]["name"]: ns["metadata"]["labels"]["datamesh.io/domain"]
                  for ns in rendered_for("docker-desktop")["namespaces"]}
    assert namespaces == {"jupyterhub": "platform", "data-platform": "platform",
                          "sales-domain": "sales", "marketing-domain": "marketing"}


def test_five_postgres_instances_with_their_volumes_and_databases():
    objects = rendered_for("docker-desktop")["postgres"]
    sets = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in objects if s["kind"] == "StatefulSet"}
    sizes = {key: s["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] for key, s in sets.items()}
    assert sizes == {
        ("data-platform", "postgres-sales"): "5Gi",
        ("data-platform", "postgres-marketing"): "5Gi",
        ("data-platform", "postgres-hive"): "2Gi",
        ("sales-domain", "postgres"): "5Gi",
        ("marketing-domain", "postgres"): "5Gi",
    }
    env = {key: {e["name"]: e for e in s["spec"]["template"]["spec"]["containers"][0]["env"]} for key, s in sets.items()}
    assert env[("data-platform", "postgres-sales")]["POSTGRES_DB"]["value"] == "sales_db"
    assert env[("data-platform", "postgres-marketing")]["POSTGRES_DB"]["value"] == "marketing_db"
    for key, s in sets.items():
        container = s["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
        assert "pg_isready" in " ".join(container["readinessProbe"]["exec"]["command"])
        assert env[key]["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
        assert s["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    services = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in objects if s["kind"] == "Service"}
    assert services == set(sets)


def test_schema_sql_has_the_contract_tables_keys_and_indexes():
    configmaps = {c["metadata"]["name"]: c["data"]["01-schema.sql"] for c in rendered_for("docker-desktop")["postgres"]
                  if c["kind"] == "ConfigMap"}
    sales, marketing = configmaps["postgres-sales-init"], configmaps["postgres-marketing-init"]
    for table in ("customers", "orders"):
        assert f"CREATE TABLE {table}" in sales
    for table in ("leads", "campaigns"):
        assert f"CREATE TABLE {table}" in marketing
    assert "REFERENCES customers (customer_id)" in sales and "REFERENCES campaigns (campaign_id)" in marketing
    assert "CREATE INDEX" in sales and "CREATE INDEX" in marketing


def test_no_secret_literal_in_configmaps_or_env(rendered):
    for obj in all_objects(rendered):
        if obj["kind"] == "ConfigMap":
            for text in obj["data"].values():
                assert "admin123" not in text.lower()
                # a password setting (YAML `key: value`, properties `key=value`) may only name an
                # environment variable: ${VAR}, $__env{VAR}, ${ENV:VAR}
                assert not re.search(r"password[\w.-]*(:[ \t]*|=)(?!['\"]?\$)\S", text.lower()), text
        for container in _containers(obj):
            for env in container.get("env", []):
                if any(word in env["name"].upper() for word in ("PASSWORD", "SECRET", "TOKEN")):
                    assert "valueFrom" in env and "value" not in env, env


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def test_docker_desktop_keeps_the_lab_logins_visibly():
    import base64
    secrets = {s["metadata"]["name"]: s for s in rendered_for("docker-desktop")["credentials"]}
    def value(name, key):
        return base64.b64decode(secrets[name]["data"][key]).decode()
    assert (value("postgres-sales-credentials", "username"), value("postgres-sales-credentials", "password")) == ("admin", "admin123")
    assert (value("minio-credentials", "root-user"), value("minio-credentials", "root-password")) == ("minioadmin", "minioadmin")
    assert value("jupyterhub-credentials", "admin-password") == "admin"
    assert value("grafana-credentials", "admin-password") == "admin"
    assert secrets["jupyterhub-credentials"]["metadata"]["annotations"]["datamesh.io/generated-keys"] == "proxy-auth-token"


def test_generate_policy_renders_no_password_and_marks_it_generated(write_inventory):
    from datamesh import inventory
    path = write_inventory("cluster: {context: some-cluster}\n")
    inv = inventory.load(str(path))
    secrets = playbook.load("up").roles[1].render(inv.vars)
    for secret in secrets:
        annotations = secret["metadata"]["annotations"]
        generated = annotations.get("datamesh.io/generated-keys", "").split(",")
        copied = [item.partition("=")[0] for item in annotations.get("datamesh.io/copy-keys", "").split(",")]
        assert any("password" in key for key in generated + copied)
        for key in filter(None, generated + copied):
            assert secret["data"][key] == ""


def test_render_is_pure_and_repeatable():
    assert rendered_for("docker-desktop") == rendered_for("docker-desktop")


def test_render_task_writes_one_file_per_role_in_playbook_order(tmp_path):
    written = playbook.write_rendered(rendered_for("docker-desktop"), tmp_path / "out")
    assert [p.name for p in written] == [f"{i:02d}-{name}.yaml" for i, name in enumerate(playbook.load("up").names())]
    for path in written:
        for obj in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(obj, NEWEST, strict=True)
