"""Rules every role keeps, on every shipped inventory and on the variants that render more.

Strictly valid Kubernetes at the oldest and the newest schema we support, our labels on every
object, pods that run as non-root with pinned images, probes and sized containers, no secret
literal anywhere, NodePorts bound to their components from the one table, and a pure render.
"""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
from kubernetes.utils.quantity import parse_quantity

from datamesh import inventory, playbook
from tests.unit.helpers import (
    NEWEST, OLDEST, all_objects, by_kind, containers, parse_properties, parse_site, pod_spec, rendered_for,
)

# What no shipped inventory renders, as an inventory file of its own: Trino's worker Deployment,
# MinIO instead of versitygw, and Trino 435 with its legacy S3 keys.
VARIANTS = {
    "trino-workers": "trino: {workers: 2}\n",
    "minio-server": "minio: {server: minio}\n",
    "trino-435": "images: {trino: 'trinodb/trino:435'}\n",
}
APPS = ("jupyterhub", "grafana", "dbt-docs")
DATA_ROLES = ("minio", "hive-metastore", "trino")
WORKLOADS = ("Deployment", "StatefulSet", "Job")
# An env variable with one of these names holds a login: it must come from a Secret.
LOGIN = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|USER$")


@pytest.fixture(params=[*inventory.available(), *VARIANTS])
def rendered(request, write_inventory) -> dict[str, list[dict]]:
    """Every role's manifests, once per inventory under inventory/ and once per variant."""
    if request.param in VARIANTS:
        return rendered_for(str(write_inventory(VARIANTS[request.param], name=f"{request.param}.yml")))
    return rendered_for(request.param)


def workloads(rendered: dict[str, list[dict]]) -> list[dict]:
    return [obj for obj in all_objects(rendered) if obj["kind"] in WORKLOADS]


# -- valid Kubernetes -----------------------------------------------------------------------

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


def test_render_is_pure_and_repeatable():
    assert rendered_for("docker-desktop") == rendered_for("docker-desktop")


# -- pods -----------------------------------------------------------------------------------

def test_pods_run_as_non_root_with_probes_limits_and_pinned_images(rendered):
    assert workloads(rendered)
    for obj in workloads(rendered):
        pod = pod_spec(obj)
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] > 0, obj["metadata"]["name"]
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in containers(obj):
            where = f"{obj['kind']} {obj['metadata']['name']} {container['name']}"
            assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                                    "capabilities": {"drop": ["ALL"]}}, where
            image = container["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), where
            assert ":" in image.rsplit("/", 1)[-1], where
            resources = container["resources"]
            assert set(resources) == {"requests", "limits"}, where
            for kind in ("cpu", "memory"):
                assert parse_quantity(resources["requests"][kind]) <= parse_quantity(resources["limits"][kind]), where
        if obj["kind"] != "Job":
            assert obj["spec"]["selector"]["matchLabels"].items() <= obj["spec"]["template"]["metadata"]["labels"].items()
            for container in pod["containers"]:
                assert "readinessProbe" in container and "livenessProbe" in container, obj["metadata"]["name"]


# -- no secret literal ----------------------------------------------------------------------

def test_no_secret_literal_in_configmaps_or_env(rendered):
    for obj in all_objects(rendered):
        if obj["kind"] == "ConfigMap":
            for key, text in obj["data"].items():
                assert "admin123" not in text.lower()
                if key.endswith((".py", ".ipynb")):
                    # code (users' starter notebooks and scripts): no password as a string literal
                    assert not re.search(r"password\w*\W{0,3}\s*[:=]\s*\\?['\"][^'\"$]", text.lower()), key
                    continue
                # a password setting (YAML `key: value`, properties `key=value`) may only name an
                # environment variable: ${VAR}, $__env{VAR}, ${ENV:VAR}, dbt's {{ env_var('VAR') }};
                # or a file (a path) the value is in, or a plugin (`password-authenticator.name`)
                assert not re.search(r"password[\w.-]*(?<!\.name)(:[ \t]*|=)(?!['\"]?(\$|/|\{\{ env_var\())\S",
                                     text.lower()), text
        for container in containers(obj):
            for env in container.get("env", []):
                if LOGIN.search(env["name"].upper()):
                    assert set(env) == {"name", "valueFrom"}, env


def test_no_password_literal_in_the_data_roles_configmaps(docker_desktop, dd):
    """Their properties and Hadoop files name logins only as environment variables; no lab password appears
    (JupyterHub's config file says `admin`, the lab user's name, in prose)."""
    lab = set(docker_desktop["credentials"]["lab_passwords"].values()) | {"minioadmin"}
    for obj in [obj for name in DATA_ROLES for obj in dd[name]]:
        if obj["kind"] != "ConfigMap":
            continue
        for key, text in obj["data"].items():
            # Trino's access rules name its users, and the lab hub password is also a user name (admin)
            for word in lab - {"admin"} if key == "rules.json" else lab:
                assert not re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w.-])", text), (key, word)
            if key.endswith(".properties"):
                for name, value in parse_properties(text).items():
                    if any(w in name for w in ("password", "secret", "access-key", "user")):
                        file_or_plugin = name.endswith((".name", "-file")) and not value.startswith("$")
                        assert file_or_plugin or re.fullmatch(r"\$\{ENV:\w+\}", value), (key, name, value)
            if key.endswith(".xml"):
                for name, value in parse_site(text).items():
                    if any(w in name.lower() for w in ("password", "username", "secret", "access.key")):
                        assert re.fullmatch(r"\$\{env\.\w+\}", value), (key, name, value)


# -- NodePorts ------------------------------------------------------------------------------

def test_nodeports_are_bound_to_their_components(docker_desktop, dd):
    objects = all_objects(dd)
    pods = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] in ("Deployment", "StatefulSet")}
    bound = {}
    for service in by_kind(objects, "Service").values():
        for port in service["spec"]["ports"]:
            if "nodePort" in port:
                assert service["spec"]["type"] == "NodePort"
                target = pods[service["spec"]["selector"]["app.kubernetes.io/name"]]
                pod = target["spec"]["template"]
                assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
                ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
                bound[port["nodePort"]] = (service["metadata"]["name"], target["metadata"]["name"], ports[port["targetPort"]])
    nodeports = docker_desktop["nodeports"]
    assert bound == {
        nodeports["jupyterhub"]: ("proxy-public", "proxy", 8000),
        nodeports["trino"]: ("trino-public", "trino-coordinator", 8443),  # HTTPS, where Trino checks passwords
        nodeports["minio-console"]: ("minio-console", "minio", 9001),
        nodeports["grafana"]: ("grafana", "grafana", 3000),
        nodeports["dbt-docs"]: ("dbt-docs", "dbt-docs", 8080),
    }
    assert (nodeports["trino"], nodeports["minio-console"]) == (30081, 30082)


def test_nodeports_come_from_the_one_table(dd):
    ports = {(s["metadata"]["name"], p["port"]): p["nodePort"]
             for role in APPS for s in dd[role] if s["kind"] == "Service" and s["spec"]["type"] == "NodePort"
             for p in s["spec"]["ports"]}
    assert ports == {("proxy-public", 80): 30080, ("grafana", 3000): 30083, ("dbt-docs", 80): 30084}


def test_a_different_nodeport_table_moves_the_services(write_inventory):
    inv = inventory.load(str(write_inventory("nodeports: {jupyterhub: 31080, grafana: 31083, dbt-docs: 31084}\n")))
    roles = {r.name: r for r in playbook.load("up").roles}
    ports = {p["nodePort"] for name in APPS for s in roles[name].render(inv.vars)
             if s["kind"] == "Service" and s["spec"]["type"] == "NodePort" for p in s["spec"]["ports"]}
    assert ports == {31080, 31083, 31084}
