"""The hive-metastore role: Hive Metastore on PostgreSQL, with the jars it lacks and s3a:// access."""

from __future__ import annotations

import re

from kubernetes.utils.quantity import parse_quantity

from datamesh import inventory
from tests.unit.helpers import by_kind, java_size, parse_site, render


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
