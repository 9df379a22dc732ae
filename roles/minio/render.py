"""The S3 object store of the data lake, with its console and the `datalake` bucket.

One StatefulSet with its own volume serves the S3 API (Service `minio`, port 9000: the address
users' code knows, minio.<namespace>.svc.cluster.local:9000) and a console (Service
`minio-console`, port 9001 on its NodePort); the root login comes from the credentials role's
Secret `minio-credentials`. The inventory key `minio.server` chooses the program:

- `versitygw` (the default): the Versity S3 Gateway, Apache-2.0 and maintained, published for
  amd64 and arm64 by its release workflow (ghcr.io/versity/versitygw, also on Docker Hub). Its
  posix backend keeps objects as plain files in the folder versitygw/ of the volume, and their
  metadata in user xattrs, as upstream's Helm chart does by default (versitygw checks them at
  start and stops with "xattr check failed" on a filesystem without); its health
  endpoint answers the probes; its WebUI is served on the console port under /ui/, with the S3
  API on the same port so that the browser can reach both through the one NodePort.
- `minio`: MinIO's community edition at a pinned RELEASE tag from quay.io/minio. MinIO archived
  it upstream and Docker Hub's minio/* images were deleted (September 2026): the quay.io tags
  are a frozen snapshot that gets no fixes, so `invoke status` says so. Its data live at the
  volume's root, so each server keeps its own data on the one volume and a switch deletes
  nothing: the newly chosen server starts with the bucket and prefixes only (the bucket Job runs
  again), and switching back finds the other's data where they were (MinIO then also lists the
  folder versitygw/ as a bucket).

Why versitygw by default: a user on a fresh laptop can pull it today from a registry that serves
it, it gets fixes, its license is permissive, and it is the very release the service testbed builds
and runs (VERSITYGW_VERSION in testbed/objectstore.py), so the tests prove what users run.

A Job creates the bucket and its prefixes idempotently with the AWS CLI, which speaks to either
server (files/minio/buckets.sh; the service testbed runs that same script). Jobs are immutable,
so the Job's name carries a hash of its pod template: a changed script or image is a new Job, an
unchanged one is found again and left alone (no TTL, or every run would re-create it).
"""

from datamesh.errors import DatameshError
from datamesh.manifests import (
    NOTICE, URL_PATH, claim_spec, container_security, fqdn, metadata, pod_security, read, secret_name, secret_ref,
    selector, service, service_port, template_digest,
)
from datamesh.netpol import network_policies

DEPENDS_ON = ["namespaces", "credentials"]
NAME = "minio"
SERVERS = ("versitygw", "minio")
API_PORT, CONSOLE_PORT = 9000, 9001
UID = 1000  # any non-root uid works with both images (versitygw's own Helm chart runs as 1000); fsGroup makes the volume writable
DATA = "/data"
VERSITYGW_ROOT = f"{DATA}/versitygw"  # its buckets, apart from MinIO's data at the volume's root
HEALTH = "/_/health"  # versitygw's unauthenticated health endpoint (--health), the path its Helm chart probes
WEBUI = "/ui"         # versitygw's WebUI, mounted on its S3 listeners (--webui-s3-prefix)
REGION = "us-east-1"  # the region both servers answer by default
SCRIPT = "minio/buckets.sh"
MINIO_ARCHIVED = (
    "MinIO community edition is archived upstream: quay.io/minio keeps a frozen snapshot of its images "
    "and it gets no fixes; set minio.server: versitygw in the inventory to switch to a maintained S3 server "
    "(it starts with an empty datalake bucket; MinIO's data stay on the volume, untouched)."
)


def render(vars: dict) -> list[dict]:
    namespace = vars["namespaces"]["platform"]
    server = chosen_server(vars)
    console = service("minio", "minio-console", namespace,
                      service_port("console", CONSOLE_PORT, node_port=vars["nodeports"]["minio-console"]), app=NAME)
    if server == "versitygw":
        console["metadata"]["annotations"] = {URL_PATH: f"{WEBUI}/"}
    return [
        service("minio", NAME, namespace, service_port("api", API_PORT)),
        console,
        statefulset(namespace, vars, server),
        bucket_job(namespace, vars, read(SCRIPT)),
    ] + network_policies("minio", vars)


def chosen_server(vars: dict) -> str:
    server = vars["minio"]["server"]
    if server not in SERVERS:
        raise DatameshError(f"key 'minio.server' must be one of {', '.join(SERVERS)}, got {server!r}; "
                            "set it in the inventory file (versitygw is the maintained one).")
    return server


def endpoint(namespace: str) -> str:
    """The S3 endpoint other components use: the full service name, path-style, plain HTTP."""
    return f"http://{fqdn(NAME, namespace)}:{API_PORT}"


def root_credentials(user: str, password: str) -> list[dict]:
    """The root login from the credentials role's Secret, under the variable names a program reads."""
    secret = secret_name(NAME)
    return [
        {"name": user, "valueFrom": secret_ref(secret, "root-user")},
        {"name": password, "valueFrom": secret_ref(secret, "root-password")},
    ]


PORTS = [
    {"name": "api", "containerPort": API_PORT, "protocol": "TCP"},
    {"name": "console", "containerPort": CONSOLE_PORT, "protocol": "TCP"},
]


def probes(ready: str, live: str) -> dict:
    return {
        "readinessProbe": {"httpGet": {"path": ready, "port": "api"}, "initialDelaySeconds": 5, "periodSeconds": 5,
                           "timeoutSeconds": 3, "failureThreshold": 6},
        "livenessProbe": {"httpGet": {"path": live, "port": "api"}, "initialDelaySeconds": 30, "periodSeconds": 10,
                          "timeoutSeconds": 5, "failureThreshold": 6},
    }


def versitygw(vars: dict) -> tuple[list[dict], dict]:
    """(init containers, container) of versitygw: the S3 API on both ports, the WebUI on them under
    /ui/ and told where the browser finds the S3 API (the console's NodePort), posix backend."""
    console_url = f"http://{vars['hosts']['address']}:{vars['nodeports']['minio-console']}"
    image, resources = vars["images"]["versitygw"], vars["resources"]["versitygw"]
    mounts = [{"name": "data", "mountPath": DATA}]
    folder = {  # the posix backend needs its top folder to exist
        "name": "data-folder",
        "image": image,
        "command": ["mkdir", "-p", VERSITYGW_ROOT],
        "resources": resources,
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    container = {
        "name": "versitygw",
        "image": image,  # its entrypoint runs versitygw with these arguments
        "args": ["--port", f":{API_PORT}", "--port", f":{CONSOLE_PORT}", "--health", HEALTH,
                 "--webui-s3-prefix", WEBUI, "--webui-gateways", console_url, "--quiet",
                 "posix", VERSITYGW_ROOT],
        "ports": PORTS,
        "env": root_credentials("ROOT_ACCESS_KEY", "ROOT_SECRET_KEY"),
        "resources": resources,
        **probes(HEALTH, HEALTH),
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    return [folder], container


def minio(vars: dict) -> tuple[list[dict], dict]:
    """(init containers, container) of MinIO: the server on the volume's root, its console on 9001."""
    return [], {
        "name": "minio",
        "image": vars["images"]["minio"],
        "args": ["server", DATA, "--console-address", f":{CONSOLE_PORT}"],
        "ports": PORTS,
        "env": root_credentials("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"),
        "resources": vars["resources"]["minio"],
        **probes("/minio/health/ready", "/minio/health/live"),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "data", "mountPath": DATA}],
    }


def statefulset(namespace: str, vars: dict, server: str) -> dict:
    labels = metadata("minio", NAME)["labels"]
    init_containers, container = versitygw(vars) if server == "versitygw" else minio(vars)
    pod_spec = {
        "securityContext": pod_security(UID),
        "enableServiceLinks": False,  # a Service named minio would otherwise inject MINIO_* variables
        **({"initContainers": init_containers} if init_containers else {}),
        "containers": [container],
    }
    meta = metadata("minio", NAME, namespace)
    if server == "minio":
        meta["annotations"] = {NOTICE: MINIO_ARCHIVED}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta,
        "spec": {
            "serviceName": NAME,
            "replicas": 1,
            "selector": {"matchLabels": selector(NAME)},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": labels},
                                      "spec": claim_spec(vars, vars["storage"]["minio"])}],
        },
    }


def bucket_job(namespace: str, vars: dict, script: str) -> dict:
    """The Job that makes the bucket; its name changes whenever its pod template does, and so
    whenever the server does (S3_SERVER), since a newly chosen server starts without the bucket."""
    settings = vars["minio"]
    template = {
        "metadata": {"labels": metadata("minio", "minio-buckets")["labels"]},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": pod_security(UID),
            "enableServiceLinks": False,
            "containers": [{
                "name": "buckets",
                "image": vars["images"]["s3-cli"],
                "command": ["/bin/sh", "-c", script],
                "env": [
                    {"name": "S3_ENDPOINT", "value": endpoint(namespace)},
                    {"name": "S3_SERVER", "value": chosen_server(vars)},
                    *root_credentials("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
                    {"name": "AWS_DEFAULT_REGION", "value": REGION},
                    {"name": "BUCKET", "value": settings["bucket"]},
                    {"name": "PREFIXES", "value": " ".join(settings["prefixes"])},
                    {"name": "HOME", "value": "/tmp"},
                ],
                "resources": vars["resources"]["s3-cli"],
                "securityContext": container_security(),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata("minio", f"minio-buckets-{template_digest(template)}", namespace),
        "spec": {"backoffLimit": 3, "template": template},
    }
