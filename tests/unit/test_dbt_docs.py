"""The dbt-docs role: nginx serving what `invoke seed` publishes, a placeholder page until then.

nginx's config is checked against the mounts and probes around it.
"""

from __future__ import annotations

import copy
import re

import pytest

from datamesh import ROOT
from datamesh.errors import DatameshError
from datamesh.role import load
from tests.unit.helpers import find, pod_spec


def test_dbt_docs_objects_and_mounts(dd):
    objects = dd["dbt-docs"]
    assert {o["metadata"]["namespace"] for o in objects} == {"data-platform"}
    claim = find(objects, "PersistentVolumeClaim", "dbt-docs-site")
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    service = find(objects, "Service", "dbt-docs")["spec"]
    assert service["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": 30084}]
    deployment = find(objects, "Deployment", "dbt-docs")
    spec = pod_spec(deployment)
    container = spec["containers"][0]
    assert re.fullmatch(r"nginxinc/nginx-unprivileged:1\.\d+\.\d+-alpine[\d.]*", container["image"])
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert spec["securityContext"]["runAsUser"] == 101
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert volumes[mounts["/usr/share/nginx/html"]["name"]]["persistentVolumeClaim"]["claimName"] == "dbt-docs-site"
    assert volumes[mounts["/usr/share/nginx/placeholder"]["name"]]["configMap"]["name"] == "dbt-docs-placeholder"
    conf = mounts["/etc/nginx/conf.d/default.conf"]
    assert volumes[conf["name"]]["configMap"]["name"] == "dbt-docs-config" and conf["subPath"] == "default.conf"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert find(objects, "ConfigMap", "dbt-docs-config")["data"]["default.conf"] == (ROOT / "files/dbt-docs/default.conf").read_text()
    assert find(objects, "ConfigMap", "dbt-docs-placeholder")["data"]["placeholder.html"] == \
        (ROOT / "files/dbt-docs/placeholder.html").read_text()


def test_nginx_config_serves_the_docs_or_the_placeholder(dd):
    conf = (ROOT / "files/dbt-docs/default.conf").read_text()
    code = "\n".join(line.split("#")[0] for line in conf.splitlines())
    assert re.search(r"listen\s+8080;", code) and "user " not in code
    assert re.search(r"root\s+/usr/share/nginx/html;", code)
    assert re.search(r"location = / \{[^}]*try_files /index.html @placeholder;", code)
    assert re.search(r"location @placeholder \{[^}]*root /usr/share/nginx/placeholder;[^}]*try_files /placeholder.html =404;", code)
    container = pod_spec(find(dd["dbt-docs"], "Deployment", "dbt-docs"))["containers"][0]
    probe = container["readinessProbe"]["httpGet"]
    assert re.search(r"location = %s \{[^}]*return 200" % re.escape(probe["path"]), code)
    assert container["livenessProbe"]["httpGet"] == probe
    assert code.count("{") == code.count("}")


def test_placeholder_says_how_to_generate_the_docs():
    page = (ROOT / "files/dbt-docs/placeholder.html").read_text()
    assert "not been generated yet" in page
    for hint in ("invoke seed", "dbt docs generate", "index.html", "manifest.json", "catalog.json"):
        assert hint in page


def test_the_sync_container_copies_the_published_docs_from_the_bucket_into_the_site(dd, docker_desktop):
    spec = pod_spec(find(dd["dbt-docs"], "Deployment", "dbt-docs"))
    sync = next(c for c in spec["containers"] if c["name"] == "sync")
    assert sync["image"] == docker_desktop["images"]["s3-cli"]  # the bucket Job's AWS CLI image
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in sync["env"]}
    assert env["S3_ENDPOINT"] == "http://minio.data-platform.svc.cluster.local:9000"
    assert env["BUCKET"] == "datalake" and env["PREFIX"] == "_datamesh/dbt-docs/" and env["INTERVAL"] == "15"
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "minio-credentials", "key": "root-user"}}
    nginx_site = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == env["SITE"])
    assert any(m["name"] == nginx_site["name"] for m in sync["volumeMounts"])
    assert sync["command"][:2] == ["/bin/sh", "-c"]
    assert sync["command"][2] == (ROOT / "files" / "dbt-docs" / "sync-docs.sh").read_text()


@pytest.mark.parametrize("settings, key", [
    ({"prefix": "/docs/"}, "dbt_docs.prefix"), ({"prefix": "docs"}, "dbt_docs.prefix"),
    ({"sync_seconds": 0}, "dbt_docs.sync_seconds"), ({"sync_seconds": "15"}, "dbt_docs.sync_seconds"),
])
def test_a_bad_docs_setting_is_refused_naming_its_key(docker_desktop, settings, key):
    vars = copy.deepcopy(docker_desktop.vars)
    vars["dbt_docs"].update(settings)
    with pytest.raises(DatameshError, match=re.escape(key)):
        load("dbt-docs").render(vars)
