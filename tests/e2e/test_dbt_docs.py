"""nginx runs the role's default.conf: the placeholder page until the docs are published into the
site volume, then the docs site, on NodePort 30084."""

from __future__ import annotations

import json
import urllib.request

import pytest

from testbed.native import native_path
from testbed.processes import run_dir


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def site(config):
    """The folder nginx serves (the pod's /usr/share/nginx/html, the dbt-docs-site volume), emptied after."""
    section = config["nginx"]
    folder = native_path("/usr/share/nginx/html", section["paths"], run_dir() / "nginx")
    yield folder
    for name in ("index.html", "manifest.json", "catalog.json"):
        (folder / name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def url(config) -> str:
    node_port = config["nginx"]["service"][0]["node_port"]
    assert node_port == 30084
    return f"http://127.0.0.1:{node_port}"


def test_placeholder_until_docs_are_published(url, site):
    assert not (site / "index.html").exists()
    status, headers, body = get(f"{url}/")
    assert status == 200 and headers.get("X-Dbt-Docs") == "placeholder"
    assert b"The dbt docs have not been generated yet" in body
    assert get(f"{url}/healthz")[0] == 200


def test_published_docs_replace_the_placeholder(url, site):
    # as `invoke seed` publishes: the three files `dbt docs generate` writes to target/
    (site / "index.html").write_text("<!doctype html><title>dbt Docs</title><div id=app>datamesh docs</div>")
    (site / "manifest.json").write_text(json.dumps({"metadata": {"dbt_version": "1.8.0"}, "nodes": {}}))
    (site / "catalog.json").write_text(json.dumps({"metadata": {}, "nodes": {}, "sources": {}}))
    status, headers, body = get(f"{url}/")
    assert status == 200 and b"datamesh docs" in body and "X-Dbt-Docs" not in headers
    status, headers, body = get(f"{url}/manifest.json")
    assert status == 200 and json.loads(body)["metadata"]["dbt_version"] == "1.8.0"
    assert headers.get("Content-Type", "").startswith("application/json")
    assert get(f"{url}/catalog.json")[0] == 200
    assert get(f"{url}/missing.json")[0] == 404
