"""The dbt-docs role: nginx serving what `invoke seed` publishes, a placeholder page until then.

nginx's config is checked against the mounts and probes around it.
"""

from __future__ import annotations

import re

from datamesh import ROOT
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
