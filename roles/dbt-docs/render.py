"""The dbt docs site: nginx serving what `invoke seed` publishes, a placeholder page until then.

nginx (the unprivileged build: uid 101, port 8080) serves /usr/share/nginx/html from the volume
dbt-docs-site, where `seed` copies the output of `dbt docs generate`. Its server config
(files/dbt-docs/default.conf) answers the front page with index.html when it is there and else
with files/dbt-docs/placeholder.html, which says how to generate and publish the docs.
"""

from datamesh.manifests import (
    claim_spec, config_checksum, container_security, deployment, http_probes, metadata, pod_security, read, service,
    service_port,
)

DEPENDS_ON = ["namespaces"]
COMPONENT = NAME = "dbt-docs"
SITE = "dbt-docs-site"  # the PersistentVolumeClaim `seed` publishes into
PORT, CONTAINER_PORT = 80, 8080
UID = 101  # nginx in nginxinc/nginx-unprivileged


def render(vars: dict) -> list[dict]:
    ns = vars["namespaces"]["platform"]
    configmaps = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(COMPONENT, "dbt-docs-config", ns),
         "data": {"default.conf": read("dbt-docs/default.conf")}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(COMPONENT, "dbt-docs-placeholder", ns),
         "data": {"placeholder.html": read("dbt-docs/placeholder.html")}},
    ]
    return [
        *configmaps,
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata(COMPONENT, SITE, ns),
         "spec": claim_spec(vars, vars["storage"]["dbt-docs"])},
        service(COMPONENT, NAME, ns, service_port("http", PORT, node_port=vars["nodeports"]["dbt-docs"])),
        nginx(vars, ns, configmaps),
    ]


def nginx(vars: dict, ns: str, configmaps: list[dict]) -> dict:
    pod_spec = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security(UID, fsGroupChangePolicy="OnRootMismatch"),
        "containers": [{
            "name": "nginx",
            "image": vars["images"]["dbt-docs"],
            "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
            "resources": vars["resources"]["dbt-docs"],
            **http_probes("/healthz", "http", ready=(2, 3), live=(10, 3), timeout=2),
            "securityContext": container_security(),
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/nginx/conf.d/default.conf", "subPath": "default.conf",
                 "readOnly": True},
                {"name": "placeholder", "mountPath": "/usr/share/nginx/placeholder", "readOnly": True},
                {"name": "site", "mountPath": "/usr/share/nginx/html"},  # writable: seed copies the docs in
            ],
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": "dbt-docs-config"}},
            {"name": "placeholder", "configMap": {"name": "dbt-docs-placeholder"}},
            {"name": "site", "persistentVolumeClaim": {"claimName": SITE}},
        ],
    }
    # one pod at a time on the ReadWriteOnce site volume; a subPath mount never sees ConfigMap updates,
    # so a new config rolls the pod instead
    return deployment(COMPONENT, NAME, ns, pod_spec, strategy={"type": "Recreate"},
                      pod_annotations=config_checksum(*configmaps))
