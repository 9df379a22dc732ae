"""Hive Metastore 4.0.1 on PostgreSQL, able to read and write the data lake through s3a://.

One Deployment (one replica, Recreate) of apache/hive:4.0.1 (amd64 and arm64; 3.1.3 was amd64
only) with its Service on port 9083. Three init containers prepare the pod:
- fetch-jdbc-driver puts the PostgreSQL JDBC driver, checked against its pinned SHA-256, on a
  small volume that outlives the pod: it downloads once (through the inventory's proxy) and every
  later start, restarts included, works without the internet;
- link-s3a-jars links the image's own hadoop-aws and AWS SDK bundle there (Hive does not load
  share/hadoop/tools/lib); the volume is the metastore's HIVE_AUX_JARS_PATH;
- prepare-schema (the postgres image, for psql) waits for the database and drops a half-made
  schema, one whose initialisation was interrupted before its VERSION row, which would otherwise
  make every start fail.
The container's start script then runs `schematool -initOrUpgradeSchema` (create, upgrade from
3.1, or nothing) and the image's entrypoint. hive-site.xml and core-site.xml hold no secret: they
refer to environment variables filled from Secrets (Hadoop's `${env.NAME}` substitution).
"""

from xml.sax.saxutils import escape

from datamesh.manifests import (
    claim_spec, config_checksum, container_security, deployment, fqdn, metadata, pod_security, postgres, proxy_env,
    read, secret_name, secret_ref, service, service_port,
)
from datamesh.netpol import network_policies

DEPENDS_ON = ["namespaces", "credentials", "postgres", "minio"]
NAME = "hive-metastore"
JARS_CLAIM = "hive-metastore-jars"
PORT = 9083
UID = 1000  # the image's hive user
AUX_JARS = "/opt/datamesh/aux-jars"
SCRIPTS = "/opt/datamesh/scripts"
DB_PORT = 5432
S3_PORT = 9000
FILES = {  # ConfigMap key -> file under files/
    "start-metastore.sh": "hive/start-metastore.sh",
    "fetch-jdbc-driver.sh": "hive/fetch-jdbc-driver.sh",
    "link-s3a-jars.sh": "hive/link-s3a-jars.sh",
    "prepare-metastore-db.sh": "hive/prepare-metastore-db.sh",
}


def render(vars: dict) -> list[dict]:
    namespace = vars["namespaces"]["platform"]
    config = configmap(namespace, vars)
    jars = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata("hive-metastore", JARS_CLAIM, namespace),
            "spec": claim_spec(vars, vars["storage"]["hive-metastore-jars"])}
    return [config, jars, service("hive-metastore", NAME, namespace, service_port("thrift", PORT)),
            metastore_deployment(namespace, vars, config)] + network_policies("hive-metastore", vars)


def database() -> dict:
    """The hive entry of files/platform.yml: postgres-hive and its `metastore` database."""
    return postgres("hive")


def site(properties: dict[str, str]) -> str:
    """A Hadoop configuration file: one <property> per key, values XML-escaped."""
    body = "".join(
        f"  <property>\n    <name>{escape(key)}</name>\n    <value>{escape(value)}</value>\n  </property>\n"
        for key, value in properties.items()
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<configuration>\n{body}</configuration>\n'


def hive_site(namespace: str, vars: dict) -> dict[str, str]:
    pg = database()
    return {
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionURL":
            f"jdbc:postgresql://{fqdn(pg['name'], namespace)}:{DB_PORT}/{pg['database']}",
        "javax.jdo.option.ConnectionUserName": "${env.METASTORE_DB_USER}",
        "javax.jdo.option.ConnectionPassword": "${env.METASTORE_DB_PASSWORD}",
        "datanucleus.autoCreateSchema": "false",
        "hive.metastore.schema.verification": "true",
        "hive.metastore.warehouse.dir": f"s3a://{vars['minio']['bucket']}/warehouse",
        "metastore.metastore.event.db.notification.api.auth": "false",
    }


def core_site(namespace: str) -> dict[str, str]:
    return {
        "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.endpoint": f"http://{fqdn('minio', namespace)}:{S3_PORT}",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.access.key": "${env.AWS_ACCESS_KEY_ID}",
        "fs.s3a.secret.key": "${env.AWS_SECRET_ACCESS_KEY}",
        # Keep the empty "directory marker" objects S3A writes instead of deleting the parents' after
        # every write (Hadoop 3.3.1+): versitygw refuses to delete a marker of a non-empty folder,
        # which S3A retries for ~10 s, as long as Trino's metastore timeout, failing every CREATE TABLE.
        "fs.s3a.directory.marker.retention": "keep",
    }


def configmap(namespace: str, vars: dict) -> dict:
    data = {
        "hive-site.xml": site(hive_site(namespace, vars)),
        "core-site.xml": site(core_site(namespace)),
        **{key: read(path) for key, path in FILES.items()},
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata("hive-metastore", f"{NAME}-config", namespace),
        "data": data,
    }


def metastore_deployment(namespace: str, vars: dict, config: dict) -> dict:
    pod_spec = {
        "securityContext": pod_security(UID),
        "enableServiceLinks": False,
        "initContainers": init_containers(namespace, vars),
        "containers": [metastore(namespace, vars)],
        "volumes": [
            {"name": "aux-jars", "persistentVolumeClaim": {"claimName": JARS_CLAIM}},
            {"name": "config", "configMap": {"name": config["metadata"]["name"]}},
        ],
    }
    return deployment("hive-metastore", NAME, namespace, pod_spec, strategy={"type": "Recreate"},
                      pod_annotations=config_checksum(config))


def init_containers(namespace: str, vars: dict) -> list[dict]:
    settings = vars["hive-metastore"]
    security, resources = container_security(), vars["resources"]["hive-metastore-init"]
    aux, scripts = {"name": "aux-jars", "mountPath": AUX_JARS}, {"name": "config", "mountPath": SCRIPTS, "readOnly": True}
    pg = database()
    return [
        {
            "name": "fetch-jdbc-driver",
            "image": vars["images"]["curl"],
            "command": ["/bin/sh", f"{SCRIPTS}/fetch-jdbc-driver.sh"],
            "env": [
                {"name": "AUX_JARS", "value": AUX_JARS},
                {"name": "JDBC_REPOSITORY", "value": settings["jdbc"]["repository"].rstrip("/")},
                {"name": "JDBC_VERSION", "value": settings["jdbc"]["version"]},
                {"name": "JDBC_SHA256", "value": settings["jdbc"]["sha256"]},
                *proxy_env(vars),
            ],
            "resources": resources, "securityContext": security, "volumeMounts": [aux, scripts],
        },
        {
            "name": "link-s3a-jars",
            "image": vars["images"]["hive-metastore"],
            "command": ["/bin/sh", f"{SCRIPTS}/link-s3a-jars.sh"],
            "env": [{"name": "AUX_JARS", "value": AUX_JARS}],
            "resources": resources, "securityContext": security, "volumeMounts": [aux, scripts],
        },
        {
            "name": "prepare-schema",
            "image": vars["images"]["postgres"],  # for psql; the data stores already pull it
            "command": ["/bin/sh", f"{SCRIPTS}/prepare-metastore-db.sh"],
            "env": [
                {"name": "PGHOST", "value": fqdn(pg["name"], namespace)},
                {"name": "PGPORT", "value": str(DB_PORT)},
                {"name": "PGDATABASE", "value": pg["database"]},
                {"name": "PGUSER", "valueFrom": secret_ref(secret_name(pg["name"]), "username")},
                {"name": "PGPASSWORD", "valueFrom": secret_ref(secret_name(pg["name"]), "password")},
            ],
            "resources": resources, "securityContext": security, "volumeMounts": [scripts],
        },
    ]


def metastore(namespace: str, vars: dict) -> dict:
    probe = {"tcpSocket": {"port": "thrift"}}
    return {
        "name": "metastore",
        "image": vars["images"]["hive-metastore"],
        "command": ["/bin/bash", f"{SCRIPTS}/start-metastore.sh"],
        "ports": [{"name": "thrift", "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            {"name": "SERVICE_NAME", "value": "metastore"},
            {"name": "DB_DRIVER", "value": "postgres"},
            {"name": "SERVICE_OPTS", "value": f"-Xmx{vars['hive-metastore']['heap']}"},
            {"name": "HIVE_AUX_JARS_PATH", "value": AUX_JARS},
            {"name": "METASTORE_DB_USER", "valueFrom": secret_ref(secret_name(database()["name"]), "username")},
            {"name": "METASTORE_DB_PASSWORD", "valueFrom": secret_ref(secret_name(database()["name"]), "password")},
            {"name": "AWS_ACCESS_KEY_ID", "valueFrom": secret_ref(secret_name("minio"), "root-user")},
            {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret_ref(secret_name("minio"), "root-password")},
        ],
        "resources": vars["resources"]["hive-metastore"],
        "startupProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 36},
        "readinessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3},
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "aux-jars", "mountPath": AUX_JARS},
            {"name": "config", "mountPath": SCRIPTS, "readOnly": True},
            {"name": "config", "mountPath": "/opt/hive/conf/hive-site.xml", "subPath": "hive-site.xml", "readOnly": True},
            {"name": "config", "mountPath": "/opt/hadoop/etc/hadoop/core-site.xml", "subPath": "core-site.xml",
             "readOnly": True},
        ],
    }
