"""MinIO, the S3 object store of the data lake, with its console and the `datalake` bucket.

One StatefulSet with its own volume serves the S3 API (Service `minio`, port 9000) and the
console (Service `minio-console`, port 9001 on its NodePort); the root login comes from the
credentials role's Secret. A Job creates the bucket and its prefixes idempotently. Jobs are
immutable, so the Job's name carries a hash of its pod template: a changed script or image is a
new Job, an unchanged one is found again and left alone (no TTL, or every run would re-create it).
"""

import hashlib
import json

from datamesh.manifests import (
    container_security, metadata, pod_security, read, secret_name, secret_ref, selector, service,
)

DEPENDS_ON = ["namespaces", "credentials"]
NAME = "minio"
API_PORT, CONSOLE_PORT = 9000, 9001
UID = 1000  # any non-root uid works with the minio images; fsGroup makes the volume writable
DATA = "/data"
SCRIPT = "minio/buckets.sh"


def render(vars: dict) -> list[dict]:
    namespace = vars["namespaces"]["platform"]
    return [
        service("minio", NAME, namespace, "api", API_PORT),
        service("minio", "minio-console", namespace, "console", CONSOLE_PORT,
                node_port=vars["nodeports"]["minio-console"], app=NAME),
        statefulset(namespace, vars),
        bucket_job(namespace, vars, read(SCRIPT)),
    ]


def endpoint(namespace: str) -> str:
    """The S3 endpoint other components use: the full service name, path-style, plain HTTP."""
    return f"http://{NAME}.{namespace}.svc.cluster.local:{API_PORT}"


def root_credentials() -> list[dict]:
    secret = secret_name(NAME)
    return [
        {"name": "MINIO_ROOT_USER", "valueFrom": secret_ref(secret, "root-user")},
        {"name": "MINIO_ROOT_PASSWORD", "valueFrom": secret_ref(secret, "root-password")},
    ]


def statefulset(namespace: str, vars: dict) -> dict:
    labels = metadata("minio", NAME)["labels"]
    claim_spec = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": vars["storage"]["minio"]}},
    }
    if vars["storage"]["class"]:
        claim_spec["storageClassName"] = vars["storage"]["class"]
    probe = {"httpGet": {"path": "/minio/health/live", "port": "api"}}
    pod_spec = {
        "securityContext": pod_security(UID),
        "enableServiceLinks": False,  # a Service named minio would otherwise inject MINIO_* variables
        "containers": [{
            "name": "minio",
            "image": vars["images"]["minio"],
            "args": ["server", DATA, "--console-address", f":{CONSOLE_PORT}"],
            "ports": [
                {"name": "api", "containerPort": API_PORT, "protocol": "TCP"},
                {"name": "console", "containerPort": CONSOLE_PORT, "protocol": "TCP"},
            ],
            "env": root_credentials(),
            "resources": vars["resources"]["minio"],
            "readinessProbe": {"httpGet": {"path": "/minio/health/ready", "port": "api"},
                               "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 3,
                               "failureThreshold": 6},
            "livenessProbe": {**probe, "initialDelaySeconds": 30, "periodSeconds": 10,
                              "timeoutSeconds": 5, "failureThreshold": 6},
            "securityContext": container_security(),
            "volumeMounts": [{"name": "data", "mountPath": DATA}],
        }],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata("minio", NAME, namespace),
        "spec": {
            "serviceName": NAME,
            "replicas": 1,
            "selector": {"matchLabels": selector(NAME)},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": labels}, "spec": claim_spec}],
        },
    }


def bucket_job(namespace: str, vars: dict, script: str) -> dict:
    """The Job that makes the bucket; its name changes whenever its pod template does."""
    settings = vars["minio"]
    template = {
        "metadata": {"labels": metadata("minio", "minio-buckets")["labels"]},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": pod_security(UID),
            "enableServiceLinks": False,
            "containers": [{
                "name": "buckets",
                "image": vars["images"]["minio-client"],
                "command": ["/bin/sh", "-c", script],
                "env": [
                    {"name": "MINIO_ENDPOINT", "value": endpoint(namespace)},
                    *root_credentials(),
                    {"name": "BUCKET", "value": settings["bucket"]},
                    {"name": "PREFIXES", "value": " ".join(settings["prefixes"])},
                    {"name": "HOME", "value": "/tmp"},
                ],
                "resources": vars["resources"]["minio-client"],
                "securityContext": container_security(),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:8]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata("minio", f"minio-buckets-{digest}", namespace),
        "spec": {"backoffLimit": 3, "template": template},
    }
