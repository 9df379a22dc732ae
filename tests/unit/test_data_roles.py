"""The data roles: MinIO, Hive Metastore and Trino render what the platform needs, and nothing secret."""

from __future__ import annotations

import base64
import re
from decimal import Decimal
from xml.etree import ElementTree

import kubernetes_validate
import pytest
from kubernetes.utils.quantity import parse_quantity

from datamesh import budget, diff, inventory, playbook, role
from datamesh.errors import DatameshError
from tests.unit.conftest import rendered_for

OLDEST, NEWEST = "1.29.0", kubernetes_validate.utils.latest_version() + ".0"
DATA_ROLES = ("minio", "hive-metastore", "trino")
GiB = 2**30


def render(name: str, inv: inventory.Inventory) -> list[dict]:
    return role.load(name).render(inv.vars)


def data_objects(inv: inventory.Inventory) -> list[dict]:
    return [obj for name in DATA_ROLES for obj in render(name, inv)]


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def parse_properties(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not a property line: {line!r}"
            assert key.strip() not in out, f"{key} set twice"
            out[key.strip()] = value.strip()
    return out


def java_size(text: str) -> Decimal:
    """A JVM or Trino size (512m, 1280M, 1GB) in bytes."""
    number, unit = re.fullmatch(r"(\d+)([kKmMgG])?[bB]?", text).groups()
    return Decimal(number) * 1024 ** " kmg".index((unit or " ").lower())


def parse_site(text: str) -> dict[str, str]:
    root = ElementTree.fromstring(text)
    return {prop.findtext("name"): prop.findtext("value") for prop in root.iter("property")}


@pytest.fixture(scope="module")
def docker_desktop() -> inventory.Inventory:
    return inventory.load("docker-desktop")


@pytest.fixture
def with_workers(write_inventory):
    return inventory.load(str(write_inventory("trino: {workers: 2}\n")))


# -- valid Kubernetes ----------------------------------------------------------------------

@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("name", inventory.available())
def test_every_object_is_strictly_valid(name, version):
    for obj in data_objects(inventory.load(name)):
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_worker_deployment_is_strictly_valid(with_workers, version):
    for obj in render("trino", with_workers):
        kubernetes_validate.validate(obj, version, strict=True)


def test_roles_run_after_their_dependencies_in_the_playbook():
    names = playbook.load("up").names()
    assert names.index("postgres") < names.index("minio") < names.index("hive-metastore") < names.index("trino")
    assert {"postgres", "minio"} <= set(role.load("hive-metastore").depends_on)
    assert {"hive-metastore", "minio", "postgres"} <= set(role.load("trino").depends_on)
    for name in DATA_ROLES:
        assert role.load(name).description  # the module docstring's first line


# -- Trino ---------------------------------------------------------------------------------

def trino_config(inv: inventory.Inventory) -> dict[str, str]:
    return by_kind(render("trino", inv), "ConfigMap")["trino-config"]["data"]


def test_trino_catalogs_have_exactly_the_expected_properties(docker_desktop):
    data = trino_config(docker_desktop)
    catalogs = {key.removeprefix("catalog-").removesuffix(".properties"): parse_properties(text)
                for key, text in data.items() if key.startswith("catalog-")}

    def jdbc(host: str, database: str, env: str) -> dict:
        return {
            "connector.name": "postgresql",
            "connection-url": f"jdbc:postgresql://{host}.svc.cluster.local:5432/{database}",
            "connection-user": f"${{ENV:{env}_DB_USER}}",
            "connection-password": f"${{ENV:{env}_DB_PASSWORD}}",
        }

    assert catalogs == {
        "sales": jdbc("postgres-sales.data-platform", "sales_db", "SALES"),
        "marketing": jdbc("postgres-marketing.data-platform", "marketing_db", "MARKETING"),
        "sales_domain": jdbc("postgres.sales-domain", "sales_domain", "SALES_DOMAIN"),
        "marketing_domain": jdbc("postgres.marketing-domain", "marketing_domain", "MARKETING_DOMAIN"),
        "hive": {
            "connector.name": "hive",
            "hive.metastore.uri": "thrift://hive-metastore.data-platform.svc.cluster.local:9083",
            "fs.native-s3.enabled": "true",
            "s3.endpoint": "http://minio.data-platform.svc.cluster.local:9000",
            "s3.region": "us-east-1",
            "s3.path-style-access": "true",
            "s3.aws-access-key": "${ENV:S3_ACCESS_KEY}",
            "s3.aws-secret-key": "${ENV:S3_SECRET_KEY}",
            "hive.non-managed-table-writes-enabled": "true",
            "hive.security": "allow-all",
        },
    }


def test_pinning_trino_435_renders_the_legacy_s3_keys_that_release_reads(write_inventory):
    inv = inventory.load(str(write_inventory("images: {trino: 'trinodb/trino:435'}\n")))
    hive = parse_properties(trino_config(inv)["catalog-hive.properties"])
    assert {k: v for k, v in hive.items() if "s3" in k} == {
        "hive.s3.endpoint": "http://minio.data-platform.svc.cluster.local:9000",
        "hive.s3.path-style-access": "true",
        "hive.s3.ssl.enabled": "false",
        "hive.s3.aws-access-key": "${ENV:S3_ACCESS_KEY}",
        "hive.s3.aws-secret-key": "${ENV:S3_SECRET_KEY}",
    }
    for version in (OLDEST, NEWEST):
        for obj in render("trino", inv):
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("image, release", [
    ("trinodb/trino:476", 476), ("trinodb/trino:435", 435), ("registry.local:5000/trino:469", 469),
    ("trinodb/trino:476-arm64", 476),
])
def test_the_trino_release_is_read_from_the_image_tag(image, release):
    assert role.load("trino").module.release(image) == release


@pytest.mark.parametrize("image", ["trinodb/trino", "registry.local:5000/trino", "trinodb/trino:stable"])
def test_a_trino_image_without_a_release_tag_is_refused_by_name(image):
    with pytest.raises(DatameshError, match=r"images\.trino .*pin an exact release such as trinodb/trino:476"):
        role.load("trino").module.release(image)


def test_every_catalog_variable_comes_from_a_secret_the_platform_renders(docker_desktop):
    trino = by_kind(render("trino", docker_desktop), "Deployment")["trino-coordinator"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in trino["spec"]["template"]["spec"]["containers"][0]["env"]
           if "valueFrom" in e}
    referenced = set(re.findall(r"\$\{ENV:(\w+)\}", "".join(trino_config(docker_desktop).values())))
    assert referenced - {"HOSTNAME"} == set(env)
    secrets = {s["metadata"]["name"]: s for s in rendered_for("docker-desktop")["credentials"]
               if s["metadata"]["namespace"] == "data-platform"}
    for ref in env.values():
        assert ref["key"] in secrets[ref["name"]]["data"], ref
    assert env["SALES_DB_PASSWORD"] == {"name": "postgres-sales-credentials", "key": "password"}
    assert env["SALES_DOMAIN_DB_PASSWORD"] == {"name": "trino-catalog-credentials", "key": "sales-domain-password"}
    assert env["S3_SECRET_KEY"] == {"name": "minio-credentials", "key": "root-password"}


def test_trino_catalog_credentials_copy_the_domain_logins_through_the_engine():
    """The engine fills the copy from the domain Secrets seen earlier in the same run."""
    known: dict[str, str] = {}
    filled = {}
    for secret in rendered_for("docker-desktop")["credentials"]:
        result = diff.fill_generated(diff.stamp(secret), None, known)
        filled[(result["metadata"]["namespace"], result["metadata"]["name"])] = result
    copy = filled[("data-platform", "trino-catalog-credentials")]["data"]
    for domain in ("sales-domain", "marketing-domain"):
        source = filled[(domain, "postgres-credentials")]["data"]
        assert copy[f"{domain}-password"] == source["password"]
        assert base64.b64decode(copy[f"{domain}-password"]).decode() == "admin123"
        assert copy[f"{domain}-username"] == source["username"]


def test_trino_server_config_node_id_and_jvm(docker_desktop):
    data = trino_config(docker_desktop)
    assert parse_properties(data["coordinator.properties"]) == {
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true",
        "http-server.http.port": "8080",
        "discovery.uri": "http://trino-coordinator.data-platform.svc.cluster.local:8080",
        "query.max-memory": "1GB",
        "query.max-memory-per-node": "640MB",
    }
    node = parse_properties(data["node.properties"])
    assert node["node.id"] == "${ENV:HOSTNAME}" and re.fullmatch(r"[a-z0-9_]+", node["node.environment"])
    jvm = data["jvm.config"].splitlines()
    for flag in ("-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError", "-Djdk.attach.allowAttachSelf=true",
                 "-Dfile.encoding=UTF-8", "-XX:+EnableDynamicAgentLoading"):
        assert flag in jvm
    heap = java_size(next(f for f in jvm if f.startswith("-Xmx")).removeprefix("-Xmx"))
    container = by_kind(render("trino", docker_desktop), "Deployment")["trino-coordinator"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    limit = parse_quantity(container["resources"]["limits"]["memory"])
    assert heap <= limit - 512 * 2**20, "leave room for metaspace, code cache and thread stacks"
    per_node = java_size(docker_desktop["trino"]["query_max_memory_per_node"])
    assert per_node + heap * Decimal("0.3") < heap, "query memory plus the default 30% headroom must fit the heap"


def test_trino_is_ready_only_once_started(docker_desktop):
    container = by_kind(render("trino", docker_desktop), "Deployment")["trino-coordinator"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["exec"]["command"] == ["/usr/lib/trino/bin/health-check"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v1/info"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/etc/trino"}


def test_no_worker_deployment_by_default(docker_desktop):
    objects = render("trino", docker_desktop)
    assert set(by_kind(objects, "Deployment")) == {"trino-coordinator"}
    assert "worker.properties" not in trino_config(docker_desktop)


def test_workers_add_a_worker_deployment_and_free_the_coordinator(with_workers):
    objects = render("trino", with_workers)
    deployments = by_kind(objects, "Deployment")
    assert set(deployments) == {"trino-coordinator", "trino-worker"}
    assert deployments["trino-worker"]["spec"]["replicas"] == 2
    data = by_kind(objects, "ConfigMap")["trino-config"]["data"]
    assert parse_properties(data["coordinator.properties"])["node-scheduler.include-coordinator"] == "false"
    worker = parse_properties(data["worker.properties"])
    assert worker["coordinator"] == "false" and "node-scheduler.include-coordinator" not in worker
    assert worker["discovery.uri"] == "http://trino-coordinator.data-platform.svc.cluster.local:8080"

    def config_file(name: str) -> str:
        items = deployments[name]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
        return next(i["key"] for i in items if i["path"] == "config.properties")

    assert config_file("trino-coordinator") == "coordinator.properties"
    assert config_file("trino-worker") == "worker.properties"
    service = by_kind(objects, "Service")["trino-coordinator"]
    assert service["spec"]["selector"]["app.kubernetes.io/name"] == "trino-coordinator"


# -- Hive Metastore ------------------------------------------------------------------------

def hive(inv: inventory.Inventory) -> tuple[dict, dict]:
    objects = render("hive-metastore", inv)
    return by_kind(objects, "ConfigMap")["hive-metastore-config"], by_kind(objects, "Deployment")["hive-metastore"]


def test_hive_metastore_runs_once_on_postgres_with_the_jars_it_lacks(docker_desktop):
    config, deployment = hive(docker_desktop)
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    main = pod["containers"][0]
    env = {e["name"]: e for e in main["env"]}
    assert main["image"] == "apache/hive:4.0.1"
    assert main["command"] == ["/bin/bash", "/opt/datamesh/scripts/start-metastore.sh"]
    assert env["SERVICE_NAME"]["value"] == "metastore" and env["DB_DRIVER"]["value"] == "postgres"
    assert "IS_RESUME" not in env, "the start script brings the schema to the release, then resumes"
    aux = env["HIVE_AUX_JARS_PATH"]["value"]
    init = {c["name"]: c for c in pod["initContainers"]}
    assert list(init) == ["fetch-jdbc-driver", "link-s3a-jars", "prepare-schema"]
    for container in (init["fetch-jdbc-driver"], init["link-s3a-jars"], main):
        assert any(m["mountPath"] == aux and m["name"] == "aux-jars" for m in container["volumeMounts"])
    fetch_env = {e["name"]: e["value"] for e in init["fetch-jdbc-driver"]["env"]}
    assert fetch_env["JDBC_VERSION"] == "42.7.3"
    assert re.fullmatch(r"[0-9a-f]{64}", fetch_env["JDBC_SHA256"])
    assert "sha256sum -c" in config["data"]["fetch-jdbc-driver.sh"]
    assert init["link-s3a-jars"]["image"] == main["image"]
    assert "hadoop-aws-" in config["data"]["link-s3a-jars.sh"] and "aws-java-sdk-bundle-" in config["data"]["link-s3a-jars.sh"]
    assert env["METASTORE_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "postgres-hive-credentials", "key": "password"}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "minio-credentials", "key": "root-password"}
    assert main["startupProbe"]["tcpSocket"]["port"] == "thrift"
    assert main["readinessProbe"]["tcpSocket"]["port"] == main["livenessProbe"]["tcpSocket"]["port"] == "thrift"
    assert main["resources"]["limits"]["memory"] == "1Gi"
    heap = java_size(env["SERVICE_OPTS"]["value"].removeprefix("-Xmx"))
    assert heap <= parse_quantity(main["resources"]["limits"]["memory"]) / 2


def test_the_jdbc_driver_lives_on_a_volume_that_outlives_the_pod(docker_desktop):
    objects = render("hive-metastore", docker_desktop)
    claim = by_kind(objects, "PersistentVolumeClaim")["hive-metastore-jars"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "100Mi"
    volumes = {v["name"]: v for v in by_kind(objects, "Deployment")["hive-metastore"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["aux-jars"] == {"name": "aux-jars", "persistentVolumeClaim": {"claimName": "hive-metastore-jars"}}
    script = hive(docker_desktop)[0]["data"]["fetch-jdbc-driver.sh"]
    verified_first = script.index('if [ -f "$jar" ] && echo "$JDBC_SHA256  $jar" | sha256sum -c -')
    assert verified_first < script.index("curl "), "a verified jar on the volume is used without downloading"


def test_proxy_variables_reach_the_container_that_downloads_and_only_when_set(docker_desktop, write_inventory):
    def fetch_env(inv) -> dict:
        init = hive(inv)[1]["spec"]["template"]["spec"]["initContainers"]
        return {e["name"]: e.get("value") for e in init[0]["env"]}

    assert not {k for k in fetch_env(docker_desktop) if "PROXY" in k.upper()}
    inv = inventory.load(str(write_inventory(
        "proxy: {https_proxy: 'http://proxy.lab:3128', no_proxy: '.svc,.cluster.local'}\n")))
    env = fetch_env(inv)
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://proxy.lab:3128"
    assert env["NO_PROXY"] == env["no_proxy"] == ".svc,.cluster.local"
    assert "HTTP_PROXY" not in env


def test_a_half_made_schema_is_dropped_before_the_metastore_starts(docker_desktop):
    config, deployment = hive(docker_desktop)
    prepare = deployment["spec"]["template"]["spec"]["initContainers"][-1]
    assert prepare["image"] == docker_desktop["images"]["postgres"], "psql from the image the data stores pull"
    env = {e["name"]: e for e in prepare["env"]}
    assert env["PGHOST"]["value"] == "postgres-hive.data-platform.svc.cluster.local"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "postgres-hive-credentials", "key": "password"}
    script = config["data"]["prepare-metastore-db.sh"]
    assert 'to_regclass(\'\\"VERSION\\"\')' in script and "but no VERSION row" in script
    start = config["data"]["start-metastore.sh"]
    assert '"$HIVE_HOME/bin/schematool" -dbType "$DB_DRIVER" -initOrUpgradeSchema' in start
    assert start.rstrip().endswith("exec /entrypoint.sh") and "export IS_RESUME=true" in start


def test_hive_site_and_core_site_refer_to_the_environment_for_secrets(docker_desktop):
    data = hive(docker_desktop)[0]["data"]
    hive_site, core_site = parse_site(data["hive-site.xml"]), parse_site(data["core-site.xml"])
    assert hive_site["javax.jdo.option.ConnectionURL"] == \
        "jdbc:postgresql://postgres-hive.data-platform.svc.cluster.local:5432/metastore"
    assert hive_site["javax.jdo.option.ConnectionDriverName"] == "org.postgresql.Driver"
    assert hive_site["javax.jdo.option.ConnectionUserName"] == "${env.METASTORE_DB_USER}"
    assert hive_site["javax.jdo.option.ConnectionPassword"] == "${env.METASTORE_DB_PASSWORD}"
    assert hive_site["hive.metastore.warehouse.dir"] == "s3a://datalake/warehouse"
    assert core_site == {
        "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.endpoint": "http://minio.data-platform.svc.cluster.local:9000",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.access.key": "${env.AWS_ACCESS_KEY_ID}",
        "fs.s3a.secret.key": "${env.AWS_SECRET_ACCESS_KEY}",
        "fs.s3a.directory.marker.retention": "keep",
    }
    mounts = {m["mountPath"]: m.get("subPath") for m in hive(docker_desktop)[1]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/opt/hive/conf/hive-site.xml"] == "hive-site.xml"
    assert mounts["/opt/hadoop/etc/hadoop/core-site.xml"] == "core-site.xml"


# -- MinIO ---------------------------------------------------------------------------------

def test_minio_statefulset_volume_probes_and_limits(docker_desktop):
    """The default object store, versitygw; tests/unit/test_object_store.py covers both servers."""
    objects = render("minio", docker_desktop)
    sts = by_kind(objects, "StatefulSet")["minio"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert re.fullmatch(r"ghcr\.io/versity/versitygw:v\d+\.\d+\.\d+", container["image"])
    assert container["args"][-2:] == ["posix", "/data/versitygw"]
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/_/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/_/health"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env == {"ROOT_ACCESS_KEY": {"name": "minio-credentials", "key": "root-user"},
                   "ROOT_SECRET_KEY": {"name": "minio-credentials", "key": "root-password"}}
    services = by_kind(objects, "Service")
    assert services["minio"]["spec"]["type"] == "ClusterIP"
    assert services["minio"]["spec"]["ports"][0]["port"] == 9000


def bucket_job(inv: inventory.Inventory, script: str | None = None) -> dict:
    module = role.load("minio").module
    namespace = inv["namespaces"]["platform"]
    if script is None:
        return by_kind(render("minio", inv), "Job").popitem()[1]
    return module.bucket_job(namespace, inv.vars, script)


def test_bucket_job_makes_the_datalake_and_its_prefixes(docker_desktop):
    job = bucket_job(docker_desktop)
    assert "ttlSecondsAfterFinished" not in job["spec"], "a vanished Job would be re-created on every run"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert re.fullmatch(r"public\.ecr\.aws/aws-cli/aws-cli:2\.\d+\.\d+", container["image"])
    env = {e["name"]: e for e in container["env"]}
    assert env["BUCKET"]["value"] == "datalake"
    assert env["PREFIXES"]["value"].split() == ["raw/", "processed/", "curated/", "notebooks/"]
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "minio-credentials"
    script = container["command"][-1]
    assert "s3api head-bucket" in script and "s3api create-bucket" in script and ".keep" in script


def test_bucket_job_name_follows_its_script(docker_desktop):
    job = bucket_job(docker_desktop)
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    same = bucket_job(docker_desktop, script)
    changed = bucket_job(docker_desktop, script + "echo changed\n")
    assert same["metadata"]["name"] == job["metadata"]["name"]
    assert changed["metadata"]["name"] != job["metadata"]["name"]
    assert re.fullmatch(r"minio-buckets-[0-9a-f]{8}", changed["metadata"]["name"])


# -- across the three roles ----------------------------------------------------------------

def test_nodeports_are_bound_to_their_components(docker_desktop):
    objects = data_objects(docker_desktop)
    workloads = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] in ("Deployment", "StatefulSet")}
    bound = {}
    for service in by_kind(objects, "Service").values():
        for port in service["spec"]["ports"]:
            if "nodePort" in port:
                assert service["spec"]["type"] == "NodePort"
                target = workloads[service["spec"]["selector"]["app.kubernetes.io/name"]]
                pod = target["spec"]["template"]
                assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
                ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
                bound[port["nodePort"]] = (service["metadata"]["name"], target["metadata"]["name"], ports[port["targetPort"]])
    nodeports = docker_desktop["nodeports"]
    assert bound == {
        nodeports["trino"]: ("trino-coordinator", "trino-coordinator", 8080),
        nodeports["minio-console"]: ("minio-console", "minio", 9001),
    }
    assert (nodeports["trino"], nodeports["minio-console"]) == (30081, 30082)


def test_no_password_literal_in_any_configmap(docker_desktop):
    lab = set(docker_desktop["credentials"]["lab_passwords"].values()) | {"minioadmin"}
    for obj in data_objects(docker_desktop):
        if obj["kind"] != "ConfigMap":
            continue
        for key, text in obj["data"].items():
            for word in lab:
                assert not re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w.-])", text), (key, word)
            if key.endswith(".properties"):
                for name, value in parse_properties(text).items():
                    if any(w in name for w in ("password", "secret", "access-key", "user")):
                        assert re.fullmatch(r"\$\{ENV:\w+\}", value), (key, name, value)
            if key.endswith(".xml"):
                for name, value in parse_site(text).items():
                    if any(w in name.lower() for w in ("password", "username", "secret", "access.key")):
                        assert re.fullmatch(r"\$\{env\.\w+\}", value), (key, name, value)


def test_pods_run_as_non_root_with_probes_limits_and_pinned_images(docker_desktop, with_workers):
    for inv in (docker_desktop, with_workers):
        for obj in data_objects(inv):
            if obj["kind"] not in ("Deployment", "StatefulSet", "Job"):
                continue
            pod = obj["spec"]["template"]["spec"]
            security = pod["securityContext"]
            assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            for container in pod["containers"] + pod.get("initContainers", []):
                where = f"{obj['kind']} {obj['metadata']['name']} {container['name']}"
                assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                                        "capabilities": {"drop": ["ALL"]}}, where
                image = container["image"]
                assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), where
                resources = container["resources"]
                for kind in ("cpu", "memory"):
                    assert parse_quantity(resources["requests"][kind]) <= parse_quantity(resources["limits"][kind]), where
                for env in container.get("env", []):
                    if any(w in env["name"] for w in ("PASSWORD", "SECRET", "USER", "ACCESS_KEY")):
                        assert set(env) == {"name", "valueFrom"}, where
            if obj["kind"] != "Job":
                for container in pod["containers"]:
                    assert "readinessProbe" in container and "livenessProbe" in container, obj["metadata"]["name"]


def test_platform_fits_docker_desktop_with_room_for_a_user_server():
    """All of the platform's requests plus a 1Gi single-user server fit in 8Gi."""
    manifests = [obj for objects in rendered_for("docker-desktop").values() for obj in objects]
    want = budget.requested(manifests)
    assert want["memory"] + 1 * GiB <= 8 * GiB, f"{want['memory'] / GiB:.2f} GiB requested"
    data = budget.requested([obj for name in DATA_ROLES for obj in rendered_for("docker-desktop")[name]])
    assert data == {"cpu": Decimal("0.65"), "memory": Decimal(int(2.375 * GiB))}  # versitygw asks 128Mi where MinIO asked 512Mi
