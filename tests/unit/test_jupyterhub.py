"""The jupyterhub role: the hub with KubeSpawner, the proxy and their RBAC.

JupyterHub's config file is executed with the environment the hub Deployment gives it.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess

from datamesh import ROOT, inventory
from tests.unit.helpers import GiB, env_of, find, pod_spec, render


def test_jupyterhub_objects(dd):
    objects = dd["jupyterhub"]
    assert {o["metadata"]["namespace"] for o in objects} == {"jupyterhub"}
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == sorted([
        ("ConfigMap", "hub-config"), ("ConfigMap", "jupyterhub-user-home"), ("ServiceAccount", "hub"), ("Role", "hub"), ("RoleBinding", "hub"),
        ("PersistentVolumeClaim", "hub-db"), ("Service", "hub"), ("Service", "proxy-api"),
        ("Service", "proxy-public"), ("Deployment", "proxy"), ("Deployment", "hub"),
        ("NetworkPolicy", "hub"), ("NetworkPolicy", "proxy"), ("NetworkPolicy", "jupyterhub-user"),
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
    assert container["livenessProbe"]["httpGet"] == {"path": "/hub/health", "port": "http"}
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
    assert container["livenessProbe"]["httpGet"] == {"path": "/_chp_healthz", "port": "http"}
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
    hub = find(render("jupyterhub", inv), "Deployment", "hub")
    image = env_of(pod_spec(hub)["containers"][0])["DATAMESH_USER_IMAGE"]["value"]
    assert image == inv["images"]["jupyterhub-user-fallback"]
    assert re.fullmatch(r"quay\.io/jupyter/minimal-notebook:[\w.-]+", image) and not image.endswith(":latest")


def test_storage_class_reaches_the_hub_volume_and_the_user_volumes(write_inventory):
    inv = inventory.load(str(write_inventory("storage: {class: fast}\n")))
    objects = render("jupyterhub", inv)
    assert find(objects, "PersistentVolumeClaim", "hub-db")["spec"]["storageClassName"] == "fast"
    c = load_hub_config(find(objects, "Deployment", "hub"), {"proxy-auth-token": "t", "admin-user": "a", "admin-password": "p"})
    assert c.KubeSpawner.storage_class == "fast"


def materialise(configmap: dict, folder):
    """The ConfigMap as its volume shows it: one file per key."""
    folder.mkdir()
    for key, text in configmap["data"].items():
        (folder / key).write_text(text)
    return folder


def test_home_template_carries_the_dbt_project_notebooks_and_scripts_but_no_build_output(dd):
    template = find(dd["jupyterhub"], "ConfigMap", "jupyterhub-user-home")
    manifest = dict(reversed(line.split("\t")) for line in template["data"]["MANIFEST"].splitlines())
    assert {"dbt_projects/dbt_project.yml", "dbt_projects/profiles.yml", "notebooks/01_explore_data.ipynb",
            "notebooks/02_trino_queries.ipynb", "notebooks/03_analysis.ipynb", "scripts/utils.py"} <= set(manifest)
    assert any(p.startswith("dbt_projects/models/") and p.endswith(".sql") for p in manifest)
    assert not any(part in ("target", "logs", "dbt_packages") for p in manifest for part in p.split("/"))
    assert all(key in template["data"] for key in manifest.values())
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]+", key) for key in template["data"])


def test_first_login_copies_the_starter_files_and_a_later_one_keeps_the_users_edits(dd, tmp_path):
    """The init container's script, run for real: files are added only where the home has none."""
    template = materialise(find(dd["jupyterhub"], "ConfigMap", "jupyterhub-user-home"), tmp_path / "template")
    home = tmp_path / "home"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TEMPLATE": str(template)}
    first = subprocess.run(["/bin/sh", str(template / "copy-home.sh")], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    for folder in ("dbt_projects", "notebooks", "scripts", "data/uploads", "data/exports"):
        assert (home / folder).is_dir(), folder
    assert (home / "dbt_projects" / "dbt_project.yml").read_text() == \
        (ROOT / "dbt_projects" / "dbt_project.yml").read_text()
    (home / "notebooks" / "01_explore_data.ipynb").write_text("my edits")
    (home / "scripts" / "utils.py").unlink()
    again = subprocess.run(["/bin/sh", str(template / "copy-home.sh")], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert (home / "notebooks" / "01_explore_data.ipynb").read_text() == "my edits"
    assert (home / "scripts" / "utils.py").exists()
    assert "1 starter file(s) added" in again.stdout
