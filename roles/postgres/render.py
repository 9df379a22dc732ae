"""Five PostgreSQL instances: sales, marketing, Hive's metastore and the two domain databases.

Each is a StatefulSet with its own volume, a ClusterIP Service and its password from the
credentials role's Secret. The schema SQL is mounted into /docker-entrypoint-initdb.d, which
the image runs only when it initialises an empty volume, so restarts never re-run it.

Two logins per database, both in its Secret `<name>-credentials`, for least privilege:
- the owner (`username`/`password`, a superuser: the image's POSTGRES_USER) creates and writes:
  `invoke seed` loads the sources with it, the domains' Trino catalogs `sales_domain` and
  `marketing_domain` write the data products (dbt) with it, and the metastore keeps Hive's
  database with it;
- the reader (`reader-username`/`reader-password`, on every database files/platform.yml gives
  `reader_schemas`) may only read those schemas: Grafana's four data sources and Trino's `sales`
  and `marketing` catalogs log in with it, so a query through them cannot change the sources.

The reader is made by a Job per database (`<name>-readonly-<hash>`), which runs
files/postgres/readonly-role.sh with the owner login against the instance's Service: it creates
the role, sets its password from the Secret, grants CONNECT, USAGE and SELECT, and default
privileges so that tables the owner creates later are readable too. It changes only what
differs, on a new database and on one that already holds data alike. The Job's name carries a
hash of its pod template (script checksum included), so a changed script is a new Job and the
old one is pruned, while an unchanged Job stays Complete and a second `up` writes nothing. A
reader password changed in the Secret reaches the database when the Job runs again: delete the
Job (`kubectl -n <namespace> delete job -l app.kubernetes.io/name=<name>-readonly`) and `up`.
"""

from datamesh.manifests import (
    NAME, claim_spec, config_checksum, container_security, fqdn, metadata, platform, pod_security, read, secret_name,
    secret_ref, selector, service, service_port, template_digest,
)
from datamesh.netpol import network_policies

DEPENDS_ON = ["namespaces", "credentials"]
PORT = 5432
UID = 999  # the postgres user of the official image
DATA = "/var/lib/postgresql/data"
READONLY_SCRIPT = "postgres/readonly-role.sh"
READONLY_CONFIG = "postgres-readonly-role"  # one ConfigMap per namespace that has a reader
SCRIPTS = "/opt/datamesh/scripts"


def render(vars: dict) -> list[dict]:
    objects = []
    for pg in platform()["postgres"]:
        namespace = vars["namespaces"][pg["namespace"]]
        if pg["schema"]:
            objects.append(init_sql(pg, namespace))
        objects.append(service("postgres", pg["name"], namespace, service_port("postgres", PORT)))
        objects.append(statefulset(pg, namespace, vars))
    readers = [(pg, vars["namespaces"][pg["namespace"]]) for pg in platform()["postgres"] if pg["reader_schemas"]]
    scripts = {}
    for namespace in dict.fromkeys(namespace for _, namespace in readers):
        scripts[namespace] = readonly_script(namespace)
        objects.append(scripts[namespace])
    objects += [readonly_job(pg, namespace, vars, scripts[namespace]) for pg, namespace in readers]
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


def readonly_script(namespace: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata("postgres", READONLY_CONFIG, namespace),
        "data": {"readonly-role.sh": read(READONLY_SCRIPT)},
    }


def readonly_job(pg: dict, namespace: str, vars: dict, script: dict) -> dict:
    """The Job that makes the database's read-only login. It and its pods are labelled `<name>-readonly`
    (the network policies let exactly those pods reach the database besides its clients)."""
    name, secret = f"{pg['name']}-readonly", secret_name(pg["name"])
    template = {
        "metadata": {"labels": metadata("postgres", name)["labels"], "annotations": config_checksum(script)},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security(UID),
            "containers": [{
                "name": "readonly",
                "image": vars["images"]["postgres"],
                "command": ["/bin/sh", f"{SCRIPTS}/readonly-role.sh"],
                "env": [
                    {"name": "PGHOST", "value": fqdn(pg["name"], namespace)},
                    {"name": "PGPORT", "value": str(PORT)},
                    {"name": "PGDATABASE", "value": pg["database"]},
                    {"name": "PGUSER", "valueFrom": secret_ref(secret, "username")},
                    {"name": "PGPASSWORD", "valueFrom": secret_ref(secret, "password")},
                    {"name": "READER_USER", "valueFrom": secret_ref(secret, "reader-username")},
                    {"name": "READER_PASSWORD", "valueFrom": secret_ref(secret, "reader-password")},
                    {"name": "SCHEMAS", "value": " ".join(pg["reader_schemas"])},
                ],
                "resources": vars["resources"]["postgres-readonly"],
                "securityContext": container_security(),
                "terminationMessagePolicy": "FallbackToLogsOnError",  # its last lines say why it failed
                "volumeMounts": [{"name": "scripts", "mountPath": SCRIPTS, "readOnly": True}],
            }],
            "volumes": [{"name": "scripts", "configMap": {"name": READONLY_CONFIG}}],
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata("postgres", f"{name}-{template_digest(template)}", namespace, labels={NAME: name}),
        "spec": {"backoffLimit": 3, "template": template},
    }
