"""Five PostgreSQL instances: sales, marketing, Hive's metastore and the two domain databases.

Each is a StatefulSet with its own volume, a ClusterIP Service and its password from the
credentials role's Secret. The schema SQL is mounted into /docker-entrypoint-initdb.d, which
the image runs only when it initialises an empty volume, so restarts never re-run it.
"""

from datamesh.manifests import (
    claim_spec, container_security, metadata, platform, pod_security, read, secret_name, secret_ref, selector,
    service, service_port,
)
from datamesh.netpol import network_policies

DEPENDS_ON = ["namespaces", "credentials"]
PORT = 5432
UID = 999  # the postgres user of the official image
DATA = "/var/lib/postgresql/data"


def render(vars: dict) -> list[dict]:
    objects = []
    for pg in platform()["postgres"]:
        namespace = vars["namespaces"][pg["namespace"]]
        if pg["schema"]:
            objects.append(init_sql(pg, namespace))
        objects.append(service("postgres", pg["name"], namespace, service_port("postgres", PORT)))
        objects.append(statefulset(pg, namespace, vars))
    objects += network_policies("postgres", vars)
    return objects


def init_sql(pg: dict, namespace: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata("postgres", f"{pg['name']}-init", namespace),
        "data": {"01-schema.sql": read(pg["schema"])},
    }


def statefulset(pg: dict, namespace: str, vars: dict) -> dict:
    name, secret = pg["name"], secret_name(pg["name"])
    probe_command = ["sh", "-c", 'exec pg_isready -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"']
    mounts = [{"name": "data", "mountPath": DATA}]
    volumes = []
    if pg["schema"]:
        mounts.append({"name": "init", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True})
        volumes.append({"name": "init", "configMap": {"name": f"{name}-init"}})
    pod_spec = {
        "securityContext": pod_security(UID),
        "containers": [{
            "name": "postgres",
            "image": vars["images"]["postgres"],
            "ports": [{"name": "postgres", "containerPort": PORT, "protocol": "TCP"}],
            "env": [
                {"name": "POSTGRES_USER", "valueFrom": secret_ref(secret, "username")},
                {"name": "POSTGRES_PASSWORD", "valueFrom": secret_ref(secret, "password")},
                {"name": "POSTGRES_DB", "value": pg["database"]},
                {"name": "PGDATA", "value": f"{DATA}/pgdata"},
            ],
            "resources": vars["resources"]["postgres"],
            "readinessProbe": {"exec": {"command": probe_command}, "initialDelaySeconds": 5,
                               "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 6},
            "livenessProbe": {"exec": {"command": probe_command}, "initialDelaySeconds": 30,
                              "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6},
            "securityContext": container_security(),
            "volumeMounts": mounts,
        }],
    }
    if volumes:
        pod_spec["volumes"] = volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata("postgres", name, namespace),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector(name)},
            "template": {"metadata": {"labels": metadata("postgres", name)["labels"]}, "spec": pod_spec},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data", "labels": metadata("postgres", name)["labels"]},
                "spec": claim_spec(vars, vars["storage"][f"postgres-{pg['key']}"]),
            }],
        },
    }
