"""Trino 476, the query engine over PostgreSQL, the domain databases and the Hive data lake.

A coordinator Deployment (Service `trino-coordinator`, port 8080, also on its NodePort) and,
with `trino.workers: N`, a worker Deployment of N replicas. node.properties, jvm.config,
config.properties and one catalog file each for sales, marketing, hive, sales_domain and
marketing_domain live in one ConfigMap mounted at /etc/trino. Catalogs name their logins as
`${ENV:NAME}`, filled from Secrets; the domain databases' logins come from
`trino-catalog-credentials`, which the credentials role copies from the domains' namespaces.
With `security.trino_auth` people log in with passwords over HTTPS and access rules apply
(logins.py); the NodePort then moves to the Service `trino-public`, which exposes HTTPS alone.

What moving from 435 to 476 changed here (release notes 436-476, and 476 started on the
service testbed): the Hive catalog reaches the object store through Trino's native S3 file
system (`fs.native-s3.enabled`, `s3.*`), since 476 has no legacy `hive.s3.*` keys and refuses
them as unused; the image runs Java 24 (the jvm.config options below are accepted by it), and
the PostgreSQL connector needs the geospatial plugin the image ships. The per-node query memory
is sized against 476's rule (it plus the 30% heap headroom must fit in the heap), no longer
against 368's 30%-of-heap cap. Pinning an older image (`images.trino: trinodb/trino:435`, the
original architecture's) renders the legacy `hive.s3.*` keys that release takes: `release()` and
`hive_s3()` are the one place that chooses by the tag's number.
"""

from string import Template

from datamesh.errors import DatameshError
from datamesh.role import load_module
from datamesh.manifests import (
    config_checksum, container_security, deployment, fqdn, metadata, platform, pod_security, read, secret_name,
    secret_ref, service, service_port,
)
from datamesh.netpol import network_policies

logins = load_module("trino", "logins")

DEPENDS_ON = ["namespaces", "credentials", "postgres", "minio", "hive-metastore"]
COORDINATOR, WORKER = "trino-coordinator", "trino-worker"
CONFIG = "trino-config"
CATALOG_SECRET = "trino-catalog-credentials"  # rendered by the credentials role
PORT = 8080
UID = 1000  # the image's trino user
ETC = "/etc/trino"
DATA = "/data/trino"
DB_PORT = 5432
NATIVE_S3_SINCE = 470  # the first release whose legacy S3 file system is off unless fs.hadoop.enabled=true


def render(vars: dict) -> list[dict]:
    namespace = vars["namespaces"]["platform"]
    workers = vars["trino"]["workers"]
    config = configmap(namespace, vars)
    objects = [config, *services(namespace, vars), server(COORDINATOR, "coordinator.properties", 1, namespace, vars, config)]
    if workers > 0:
        objects.append(server(WORKER, "worker.properties", workers, namespace, vars, config))
    objects += network_policies("trino", vars)
    return objects


def services(namespace: str, vars: dict) -> list[dict]:
    """Without auth: trino-coordinator:8080, also on the NodePort. With it: trino-coordinator keeps
    8080 (discovery and internal calls, no logins) beside 8443 (HTTPS, where people log in), and the
    NodePort Service `trino-public` exposes 8443 alone, so no plain-HTTP port leaves the cluster."""
    node_port = vars["nodeports"]["trino"]
    if not vars["security"]["trino_auth"]:
        return [service("trino", COORDINATOR, namespace, service_port("http", PORT, node_port=node_port))]
    https = logins.HTTPS_PORT
    return [service("trino", COORDINATOR, namespace, service_port("http", PORT), service_port("https", https)),
            service("trino", logins.PUBLIC, namespace, service_port("https", https, node_port=node_port), app=COORDINATOR)]


def properties(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def discovery_uri(namespace: str) -> str:
    return f"http://{fqdn(COORDINATOR, namespace)}:{PORT}"


def server_config(namespace: str, vars: dict, coordinator: bool) -> dict[str, str]:
    settings = vars["trino"]
    values = {"coordinator": str(coordinator).lower()}
    if coordinator:
        values["node-scheduler.include-coordinator"] = str(settings["workers"] == 0).lower()
    values.update({
        "http-server.http.port": str(PORT),
        "discovery.uri": discovery_uri(namespace),
        "query.max-memory": settings["query_max_memory"],
        "query.max-memory-per-node": settings["query_max_memory_per_node"],
    })
    if vars["security"]["trino_auth"]:
        values.update(logins.server_config(coordinator))
    return values


def env_prefix(catalog: str) -> str:
    return catalog.upper()


def jdbc_catalogs(vars: dict) -> list[dict]:
    """One PostgreSQL catalog per database of files/platform.yml except Hive's own metastore.

    Each entry: catalog name, JDBC URL, and where its login is (Secret name and keys). The sources'
    catalogs `sales` and `marketing` log in read-only (the reader login, roles/postgres), so no query
    through Trino changes them; the domain catalogs keep the owner, since dbt writes the products there.
    """
    namespaces = vars["namespaces"]
    out = []
    for pg in platform()["postgres"]:
        if pg["key"] == "hive":
            continue
        if pg["namespace"] == "platform":
            secret, user_key, password_key = secret_name(pg["name"]), "reader-username", "reader-password"
        else:  # the domain's Secret lives in its own namespace; a copy lives next to Trino
            secret, user_key, password_key = CATALOG_SECRET, f"{pg['key']}-username", f"{pg['key']}-password"
        host = fqdn(pg["name"], namespaces[pg["namespace"]])
        out.append({
            "catalog": pg["key"].replace("-", "_"),
            "url": f"jdbc:postgresql://{host}:{DB_PORT}/{pg['database']}",
            "secret": secret, "user_key": user_key, "password_key": password_key,
        })
    return out


def catalogs(namespace: str, vars: dict) -> dict[str, dict[str, str]]:
    """Catalog name -> its properties."""
    out = {}
    for jdbc in jdbc_catalogs(vars):
        prefix = env_prefix(jdbc["catalog"])
        out[jdbc["catalog"]] = {
            "connector.name": "postgresql",
            "connection-url": jdbc["url"],
            "connection-user": f"${{ENV:{prefix}_DB_USER}}",
            "connection-password": f"${{ENV:{prefix}_DB_PASSWORD}}",
        }
    out["hive"] = {
        "connector.name": "hive",
        "hive.metastore.uri": f"thrift://{fqdn('hive-metastore', namespace)}:9083",
        **hive_s3(release(vars["images"]["trino"]), f"http://{fqdn('minio', namespace)}:9000"),
        "hive.non-managed-table-writes-enabled": "true",
        # The default (`legacy`) denies DROP TABLE and more, and dbt drops and renames tables on
        # every run: the catalog leaves access control to the platform (one lab user).
        "hive.security": "allow-all",
    }
    return out


def release(image: str) -> int:
    """The Trino release an image tag names: trinodb/trino:476 -> 476."""
    tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
    number = tag.split("-")[0]
    if not number.isdigit():
        raise DatameshError(f"images.trino is {image!r}, whose tag is not a Trino release number; pin an exact "
                            "release such as trinodb/trino:476, so the catalogs can be rendered for it.")
    return int(number)


def hive_s3(release: int, endpoint: str) -> dict[str, str]:
    """How the Hive catalog reaches the object store: path-style plain HTTP, keys from the env.

    Releases before NATIVE_S3_SINCE read the legacy `hive.s3.*` keys (the proven path for 435);
    later ones have only the native file system (476 refuses `hive.s3.*` as unused).
    """
    if release < NATIVE_S3_SINCE:
        return {
            "hive.s3.endpoint": endpoint,
            "hive.s3.path-style-access": "true",
            "hive.s3.ssl.enabled": "false",
            "hive.s3.aws-access-key": "${ENV:S3_ACCESS_KEY}",
            "hive.s3.aws-secret-key": "${ENV:S3_SECRET_KEY}",
        }
    return {
        "fs.native-s3.enabled": "true",
        "s3.endpoint": endpoint,
        "s3.region": "us-east-1",  # required by the SDK; MinIO and versitygw accept any
        "s3.path-style-access": "true",
        "s3.aws-access-key": "${ENV:S3_ACCESS_KEY}",
        "s3.aws-secret-key": "${ENV:S3_SECRET_KEY}",
    }


def catalog_env(vars: dict) -> list[dict]:
    env = []
    for jdbc in jdbc_catalogs(vars):
        prefix = env_prefix(jdbc["catalog"])
        env.append({"name": f"{prefix}_DB_USER", "valueFrom": secret_ref(jdbc["secret"], jdbc["user_key"])})
        env.append({"name": f"{prefix}_DB_PASSWORD", "valueFrom": secret_ref(jdbc["secret"], jdbc["password_key"])})
    env.append({"name": "S3_ACCESS_KEY", "valueFrom": secret_ref(secret_name("minio"), "root-user")})
    env.append({"name": "S3_SECRET_KEY", "valueFrom": secret_ref(secret_name("minio"), "root-password")})
    return env


def configmap(namespace: str, vars: dict) -> dict:
    settings = vars["trino"]
    data = {
        "node.properties": properties({
            "node.environment": settings["environment"],
            "node.id": "${ENV:HOSTNAME}",  # the pod name: stable for the pod's life, unique among pods
            "node.data-dir": DATA,
        }),
        "jvm.config": Template(read("trino/jvm.config")).substitute(heap=settings["heap"]),
        "log.properties": read("trino/log.properties"),
        "coordinator.properties": properties(server_config(namespace, vars, coordinator=True)),
    }
    if settings["workers"] > 0:
        data["worker.properties"] = properties(server_config(namespace, vars, coordinator=False))
    if vars["security"]["trino_auth"]:
        for key, content in logins.config_files(ETC).items():
            data[key] = content if isinstance(content, str) else properties(content)
    for name, values in catalogs(namespace, vars).items():
        data[f"catalog-{name}.properties"] = properties(values)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata("trino", CONFIG, namespace),
        "data": data,
    }


def mounted_files(config: dict, server_key: str) -> list[dict]:
    """The ConfigMap's keys as files under /etc/trino; catalog-X.properties -> catalog/X.properties."""
    items = []
    for key in config["data"]:
        if key in ("coordinator.properties", "worker.properties"):
            if key == server_key:
                items.append({"key": key, "path": "config.properties"})
        elif key.startswith("catalog-"):
            items.append({"key": key, "path": f"catalog/{key.removeprefix('catalog-')}"})
        else:
            items.append({"key": key, "path": key})
    return items


def server(name: str, server_key: str, replicas: int, namespace: str, vars: dict, config: dict) -> dict:
    """The coordinator's or the workers' Deployment."""
    info = {"httpGet": {"path": "/v1/info", "port": "http"}}
    env = catalog_env(vars)
    ports = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    mounts = [{"name": "config", "mountPath": ETC, "readOnly": True}]
    volumes = [{"name": "config", "configMap": {"name": CONFIG, "items": mounted_files(config, server_key)}}]
    if vars["security"]["trino_auth"]:
        extra = logins.pod_parts(name == COORDINATOR)
        for part, more in zip((env, ports, mounts, volumes), extra):
            part += more
    pod_spec = {
        "securityContext": pod_security(UID),
        "enableServiceLinks": False,
        "containers": [{
            "name": "trino",
            "image": vars["images"]["trino"],
            "ports": ports,
            "env": env,
            "resources": vars["resources"][name],
            # /v1/info answers 200 while the server is still starting; the image's health-check
            # script is ready only once it reports "starting": false.
            "startupProbe": {**info, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 30},
            "readinessProbe": {"exec": {"command": ["/usr/lib/trino/bin/health-check"]},
                               "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {**info, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3},
            "securityContext": container_security(),
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    }
    if name == COORDINATOR:  # one coordinator: never two at once, which also keeps a rollout within the budget
        strategy = {"type": "Recreate"}
    else:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    return deployment("trino", name, namespace, pod_spec, replicas, strategy, pod_annotations=config_checksum(config))
