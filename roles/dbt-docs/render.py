"""The dbt docs site: nginx serving what `invoke seed` publishes, a placeholder page until then.

nginx (the unprivileged build: uid 101, port 8080) serves /usr/share/nginx/html from the volume
dbt-docs-site, where `seed` copies the output of `dbt docs generate`. Its server config
(files/dbt-docs/default.conf) answers the front page with index.html when it is there and else
with files/dbt-docs/placeholder.html, which says how to generate and publish the docs.
"""

import hashlib

from datamesh.manifests import container_security, metadata, pod_security, read, selector, service

DEPENDS_ON = ["namespaces"]
COMPONENT = NAME = "dbt-docs"
SITE = "dbt-docs-site"  # the PersistentVolumeClaim `seed` publishes into
PORT, CONTAINER_PORT = 80, 8080
UID = 101  # nginx in nginxinc/nginx-unprivileged


def render(vars: dict) -> list[dict]:
    ns = vars["namespaces"]["platform"]
    config, placeholder = read("dbt-docs/default.conf"), read("dbt-docs/placeholder.html")
    claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": vars["storage"]["dbt-docs"]}}}
    if vars["storage"]["class"]:
        claim["storageClassName"] = vars["storage"]["class"]
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(COMPONENT, "dbt-docs-config", ns),
         "data": {"default.conf": config}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(COMPONENT, "dbt-docs-placeholder", ns),
         "data": {"placeholder.html": placeholder}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata(COMPONENT, SITE, ns), "spec": claim},
        service(COMPONENT, NAME, ns, "http", PORT, node_port=vars["nodeports"]["dbt-docs"]),
        deployment(vars, ns, config + placeholder),
    ]


def deployment(vars: dict, ns: str, files: str) -> dict:
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2}
    container = {
        "name": "nginx",
        "image": vars["images"]["dbt-docs"],
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "resources": vars["resources"]["dbt-docs"],
        "readinessProbe": {**probe, "initialDelaySeconds": 2, "failureThreshold": 3},
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "failureThreshold": 3},
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/nginx/conf.d/default.conf", "subPath": "default.conf", "readOnly": True},
            {"name": "placeholder", "mountPath": "/usr/share/nginx/placeholder", "readOnly": True},
            {"name": "site", "mountPath": "/usr/share/nginx/html"},  # writable: seed copies the docs in
        ],
    }
    labels = metadata(COMPONENT, NAME)["labels"]
    checksum = hashlib.sha256(files.encode()).hexdigest()[:16]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(COMPONENT, NAME, ns),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # one pod at a time on the ReadWriteOnce site volume
            "selector": {"matchLabels": selector(NAME)},
            "template": {
                # a subPath mount never sees ConfigMap updates: a new config rolls the pod instead
                "metadata": {"labels": labels, "annotations": {"datamesh.io/config-sha256": checksum}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(UID, fsGroupChangePolicy="OnRootMismatch"),
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "dbt-docs-config"}},
                        {"name": "placeholder", "configMap": {"name": "dbt-docs-placeholder"}},
                        {"name": "site", "persistentVolumeClaim": {"claimName": SITE}},
                    ],
                },
            },
        },
    }
