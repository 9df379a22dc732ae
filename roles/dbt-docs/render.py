"""The dbt docs site: nginx serving what `invoke seed` publishes, a placeholder page until then.

nginx (the unprivileged build: uid 101, port 8080) serves /usr/share/nginx/html from the volume
dbt-docs-site. Its server config (files/dbt-docs/default.conf) answers the front page with
index.html when it is there and else with files/dbt-docs/placeholder.html, which says how to
generate and publish the docs.

`seed` uploads the output of `dbt docs generate` to s3://<bucket>/<dbt_docs.prefix>; the pod's
sync container (files/dbt-docs/sync-docs.sh, the AWS CLI image the bucket Job uses) copies it
into the site every `dbt_docs.sync_seconds`. So publishing needs no pod restart and no exec, works
wherever the object store is reachable, and the volume keeps serving the last docs through
restarts of the pod or outages of the object store.
"""

from datamesh.errors import DatameshError
from datamesh.manifests import (
    claim_spec, config_checksum, container_security, deployment, fqdn, http_probes, metadata, pod_security, read,
    secret_name, secret_ref, service, service_port,
)
from datamesh.netpol import network_policies

DEPENDS_ON = ["namespaces", "credentials"]
COMPONENT = NAME = "dbt-docs"
SITE = "dbt-docs-site"  # the PersistentVolumeClaim `seed` publishes into
PORT, CONTAINER_PORT = 80, 8080
UID = 101  # nginx in nginxinc/nginx-unprivileged
SITE_PATH = "/usr/share/nginx/html"
S3_PORT = 9000  # Service minio's API port (roles/minio)


def render(vars: dict) -> list[dict]:
    check(vars["dbt_docs"])
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
    ] + network_policies(COMPONENT, vars)


def check(settings: dict) -> None:
    prefix, seconds = settings["prefix"], settings["sync_seconds"]
    if not isinstance(prefix, str) or not prefix.endswith("/") or prefix.startswith("/") or "//" in prefix:
        raise DatameshError(f"dbt_docs.prefix is {prefix!r}; give a folder of the bucket such as _datamesh/dbt-docs/ "
                            "(no leading /, ending in /).")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 3600:
        raise DatameshError(f"dbt_docs.sync_seconds is {seconds!r}; give a whole number of seconds from 1 to 3600.")


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
                {"name": "site", "mountPath": SITE_PATH},
            ],
        }, sync(vars, ns)],
        "volumes": [
            {"name": "sync-home", "emptyDir": {}},
            {"name": "config", "configMap": {"name": "dbt-docs-config"}},
            {"name": "placeholder", "configMap": {"name": "dbt-docs-placeholder"}},
            {"name": "site", "persistentVolumeClaim": {"claimName": SITE}},
        ],
    }
    # one pod at a time on the ReadWriteOnce site volume; a subPath mount never sees ConfigMap updates,
    # so a new config rolls the pod instead
    return deployment(COMPONENT, NAME, ns, pod_spec, strategy={"type": "Recreate"},
                      pod_annotations=config_checksum(*configmaps))


def sync(vars: dict, ns: str) -> dict:
    """The container that copies the published docs from the object store into the site volume."""
    minio_secret = secret_name("minio")
    return {
        "name": "sync",
        "image": vars["images"]["s3-cli"],
        "command": ["/bin/sh", "-c", read("dbt-docs/sync-docs.sh")],
        "env": [
            {"name": "S3_ENDPOINT", "value": f"http://{fqdn('minio', ns)}:{S3_PORT}"},
            {"name": "AWS_ACCESS_KEY_ID", "valueFrom": secret_ref(minio_secret, "root-user")},
            {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret_ref(minio_secret, "root-password")},
            {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
            {"name": "BUCKET", "value": vars["minio"]["bucket"]},
            {"name": "PREFIX", "value": vars["dbt_docs"]["prefix"]},
            {"name": "SITE", "value": SITE_PATH},
            {"name": "INTERVAL", "value": str(vars["dbt_docs"]["sync_seconds"])},
            {"name": "HOME", "value": "/tmp"},
        ],
        "resources": vars["resources"]["dbt-docs-sync"],
        **heartbeat_probes(vars["dbt_docs"]["sync_seconds"]),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "sync-home", "mountPath": "/tmp"}, {"name": "site", "mountPath": SITE_PATH}],
    }


def heartbeat_probes(seconds: int) -> dict:
    """Ready after the first round; alive while rounds keep finishing (a hung `aws` restarts it)."""
    fresh = f'[ $(( $(date +%s) - $(cat /tmp/heartbeat) )) -lt {4 * seconds + 120} ]'
    return {
        "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/heartbeat"]}, "periodSeconds": 5,
                           "failureThreshold": 3, "timeoutSeconds": 2},
        "livenessProbe": {"exec": {"command": ["/bin/sh", "-c", fresh]}, "initialDelaySeconds": 60,
                          "periodSeconds": 30, "failureThreshold": 3, "timeoutSeconds": 5},
    }
