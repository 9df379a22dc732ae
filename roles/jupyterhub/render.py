"""JupyterHub without Helm: the hub with KubeSpawner, configurable-http-proxy, and their RBAC.

The hub (quay.io/jupyterhub/k8s-hub) runs our files/jupyterhub/jupyterhub_config.py from a
ConfigMap, keeps its database on a volume, and spawns one server per user in its own namespace
through a ServiceAccount whose Role reaches no further. The proxy is a Deployment of its own,
public on NodePort `nodeports.jupyterhub` (Service proxy-public) and driven by the hub through
proxy-api with the token from the credentials role's Secret. Each user's server requests what
`resources.jupyterhub-user` says; the hub Deployment declares it to the budget preflight with
the `datamesh.io/extra-requests` and `datamesh.io/extra-limits` annotations.

Each server starts with an init container (files/jupyterhub/copy-home.sh) that puts the starter
files into the user's home where they are missing: the dbt project (dbt_projects/), the notebooks
and scripts (files/notebooks, files/scripts). They travel in the ConfigMap HOME_TEMPLATE, so a
changed notebook reaches the next spawned server with `invoke up`, no image build needed.
"""

import base64
import hashlib
import re


from datamesh import ROOT
from datamesh.budget import EXTRA_LIMITS, EXTRA_REQUESTS
from datamesh.errors import DatameshError
from datamesh.kube import quantity
from datamesh.manifests import (
    FILES, claim_spec, config_checksum, container_security, deployment, fqdn, http_probes, metadata, pod_security,
    read, secret_name, secret_ref, service, service_port,
)
from datamesh.netpol import network_policies

DEPENDS_ON = ["namespaces", "credentials"]
COMPONENT = "jupyterhub"
CONFIG_FILE = "jupyterhub/jupyterhub_config.py"
CONFIG_PATH = "/usr/local/etc/jupyterhub/jupyterhub_config.py"  # what the k8s-hub image runs
HUB_PORT, PROXY_PORT, PROXY_API_PORT = 8081, 8000, 8001
HUB_UID = 1000     # jovyan in the k8s-hub image
PROXY_UID = 65534  # nobody, the configurable-http-proxy image's USER
HOME_TEMPLATE = "jupyterhub-user-home"  # the starter files, mounted into each server's init container
USER_SECRET = "jupyterhub-user-credentials"  # rendered by the credentials role
HOME_SOURCES = {"dbt_projects": ROOT / "dbt_projects", "notebooks": FILES / "notebooks", "scripts": FILES / "scripts"}
NOT_COPIED = {"target", "logs", "dbt_packages", "__pycache__", ".ipynb_checkpoints", ".user.yml", ".DS_Store"}
CONFIGMAP_BYTES = 1024 * 1024  # the API server's limit on one object


def render(vars: dict) -> list[dict]:
    ns = vars["namespaces"]["jupyterhub"]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(COMPONENT, "hub-config", ns),
              "data": {"jupyterhub_config.py": read(CONFIG_FILE)}}
    return [
        config,
        home_template(ns),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(COMPONENT, "hub", ns)},
        role(ns),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata(COMPONENT, "hub", ns),
         "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": ns}],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hub"}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata(COMPONENT, "hub-db", ns),
         "spec": claim_spec(vars, vars["storage"]["jupyterhub-hub"])},
        service(COMPONENT, "hub", ns, service_port("hub", HUB_PORT, target="http")),
        service(COMPONENT, "proxy-api", ns, service_port("api", PROXY_API_PORT), app="proxy"),
        service(COMPONENT, "proxy-public", ns, service_port("http", 80, node_port=vars["nodeports"]["jupyterhub"]),
                app="proxy"),
        proxy(ns, vars),
        hub(ns, vars, config),
    ] + network_policies(COMPONENT, vars)


def role(ns: str) -> dict:
    """What KubeSpawner 6.2 does in its namespace: user pods and their volumes, and reading events.

    It creates Services only with `services_enabled` or internal SSL; the first is granted in case
    it is turned on, Secrets (internal SSL only) are not.
    """
    manage = ["get", "watch", "list", "create", "delete"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(COMPONENT, "hub", ns),
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims", "services"], "verbs": manage},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]},
        ],
    }


def proxy(ns: str, vars: dict) -> dict:
    hub_url = f"http://{fqdn('hub', ns)}:{HUB_PORT}"
    container = {
        "name": "chp",
        "image": vars["images"]["jupyterhub-proxy"],
        "command": [
            "configurable-http-proxy",
            "--ip=0.0.0.0", f"--port={PROXY_PORT}",
            "--api-ip=0.0.0.0", f"--api-port={PROXY_API_PORT}",
            f"--default-target={hub_url}",
            f"--error-target={hub_url}/hub/error",
        ],
        "env": [{"name": "CONFIGPROXY_AUTH_TOKEN", "valueFrom": secret_ref(secret_name("jupyterhub"), "proxy-auth-token")}],
        "ports": [{"name": "http", "containerPort": PROXY_PORT, "protocol": "TCP"},
                  {"name": "api", "containerPort": PROXY_API_PORT, "protocol": "TCP"}],
        "resources": vars["resources"]["jupyterhub-proxy"],
        # CHP answers /_chp_healthz on its public port only; the API port has no unauthenticated path.
        **http_probes("/_chp_healthz", "http", ready=(2, 3), live=(15, 6)),
        "securityContext": container_security(),
    }
    pod_spec = {"automountServiceAccountToken": False,
                "securityContext": pod_security(PROXY_UID, fsGroupChangePolicy="OnRootMismatch"),
                "containers": [container]}
    return deployment(COMPONENT, "proxy", ns, pod_spec)


def user_image(vars: dict) -> str:
    images = vars["images"]
    return images["jupyterhub-user"] if vars["jupyterhub"]["use_built_image"] else images["jupyterhub-user-fallback"]


def extra_amounts(amounts: dict) -> str:
    """The user server's requests or limits as the budget preflight reads them: `cpu=250m,memory=1Gi`."""
    return ",".join(f"{resource}={amounts[resource]}" for resource in ("cpu", "memory") if resource in amounts)


def hub_env(ns: str, vars: dict) -> list[dict]:
    """What files/jupyterhub/jupyterhub_config.py reads: its logins, addresses and the user servers' sizes."""
    user = vars["resources"]["jupyterhub-user"]
    secret = secret_name("jupyterhub")
    env = [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "CONFIGPROXY_AUTH_TOKEN", "valueFrom": secret_ref(secret, "proxy-auth-token")},
        {"name": "JUPYTERHUB_ADMIN_USER", "valueFrom": secret_ref(secret, "admin-user")},
        {"name": "JUPYTERHUB_ADMIN_PASSWORD", "valueFrom": secret_ref(secret, "admin-password")},
        {"name": "DATAMESH_HUB_CONNECT_IP", "value": fqdn("hub", ns)},
        {"name": "DATAMESH_PROXY_API_URL", "value": f"http://{fqdn('proxy-api', ns)}:{PROXY_API_PORT}"},
        {"name": "DATAMESH_PLATFORM_NAMESPACE", "value": vars["namespaces"]["platform"]},
        {"name": "DATAMESH_USER_IMAGE", "value": user_image(vars)},
        {"name": "DATAMESH_USER_CPU_GUARANTEE", "value": _cpu(user["requests"]["cpu"])},
        {"name": "DATAMESH_USER_CPU_LIMIT", "value": _cpu(user["limits"]["cpu"])},
        {"name": "DATAMESH_USER_MEM_GUARANTEE", "value": _bytes(user["requests"]["memory"])},
        {"name": "DATAMESH_USER_MEM_LIMIT", "value": _bytes(user["limits"]["memory"])},
        {"name": "DATAMESH_USER_STORAGE", "value": vars["storage"]["jupyterhub-user"]},
        {"name": "DATAMESH_HOME_TEMPLATE", "value": HOME_TEMPLATE},
        {"name": "DATAMESH_USER_LOGINS", "value": USER_SECRET},
        {"name": "DATAMESH_BUCKET", "value": vars["minio"]["bucket"]},
        {"name": "DATAMESH_TRINO_AUTH", "value": str(vars["security"]["trino_auth"]).lower()},
    ]
    if vars["storage"]["class"]:
        env.append({"name": "DATAMESH_STORAGE_CLASS", "value": vars["storage"]["class"]})
    return env


def hub(ns: str, vars: dict, config: dict) -> dict:
    user = vars["resources"]["jupyterhub-user"]
    container = {
        "name": "hub",
        "image": vars["images"]["jupyterhub-hub"],
        "env": hub_env(ns, vars),
        "ports": [{"name": "http", "containerPort": HUB_PORT, "protocol": "TCP"}],
        "resources": vars["resources"]["jupyterhub-hub"],
        # a generous liveness delay: a hub upgrading its database must not be killed halfway
        **http_probes("/hub/health", "http", ready=(5, 3), live=(60, 6)),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_PATH, "subPath": "jupyterhub_config.py", "readOnly": True},
            {"name": "db", "mountPath": "/srv/jupyterhub"},
        ],
    }
    pod_spec = {
        "serviceAccountName": "hub",
        "securityContext": pod_security(HUB_UID, fsGroupChangePolicy="OnRootMismatch"),
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": "hub-config"}},
                    {"name": "db", "persistentVolumeClaim": {"claimName": "hub-db"}}],
    }
    return deployment(
        COMPONENT, "hub", ns, pod_spec,
        strategy={"type": "Recreate"},  # one hub at a time on its ReadWriteOnce volume and SQLite database
        annotations={EXTRA_REQUESTS: extra_amounts(user["requests"]), EXTRA_LIMITS: extra_amounts(user["limits"])},
        # a subPath mount never sees ConfigMap updates: a new config rolls the hub instead
        pod_annotations=config_checksum(config),
    )


def home_files() -> dict[str, bytes]:
    """Path in the user's home -> content, for every starter file."""
    out = {}
    for home_dir, source in HOME_SOURCES.items():
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if path.is_file() and not NOT_COPIED.intersection(relative.parts):
                out[f"{home_dir}/{relative.as_posix()}"] = path.read_bytes()
    return out


def home_template(ns: str) -> dict:
    """The starter files as one ConfigMap: a key per file (keys cannot hold '/') and a MANIFEST
    of `key<TAB>path in the home` lines, which the init container's script follows."""
    data, binary, manifest = {"copy-home.sh": read("jupyterhub/copy-home.sh")}, {}, []
    for path, content in home_files().items():
        name = re.sub(r"[^-._a-zA-Z0-9]", "_", path.rsplit("/", 1)[-1])
        key = f"{hashlib.sha256(path.encode()).hexdigest()[:10]}-{name}"[:253]
        try:
            data[key] = content.decode()
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
        manifest.append(f"{key}\t{path}")
    data["MANIFEST"] = "\n".join(manifest) + "\n"
    size = sum(len(v.encode()) for v in data.values()) + sum(len(v) for v in binary.values())
    if size > CONFIGMAP_BYTES - 64 * 1024:
        raise DatameshError(f"the starter files for users' homes ({', '.join(HOME_SOURCES)}) add up to {size // 1024} KiB, "
                            f"over what one ConfigMap holds (1 MiB with its metadata): keep large files out of them.")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(COMPONENT, HOME_TEMPLATE, ns),
            "data": data, **({"binaryData": binary} if binary else {})}


def _cpu(amount: str) -> str:
    return format(quantity(amount).normalize(), "f")


def _bytes(amount: str) -> str:
    return str(int(quantity(amount)))
