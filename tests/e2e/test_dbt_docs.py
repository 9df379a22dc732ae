"""nginx runs the role's default.conf: the placeholder page until the docs are published, then the
docs site, on NodePort 30084; the pod's sync container brings what is published to the bucket."""

from __future__ import annotations

import io
import json
import time
import urllib.request

import pytest

from tests.e2e.conftest import remove_prefix

from testbed.native import native_path
from testbed.processes import run_dir

DOCS = ("index.html", "manifest.json", "catalog.json")


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def site(config, s3):
    """The folder nginx serves (the pod's /usr/share/nginx/html, the dbt-docs-site volume) and the
    bucket prefix its sync container copies from, both emptied for the test and restored after."""
    section = config["nginx"]
    folder = native_path("/usr/share/nginx/html", section["paths"], run_dir() / "nginx")
    bucket, prefix = config["s3"]["bucket"], section["sync"]["env"]["PREFIX"]
    published = {o.object_name: s3.get_object(bucket, o.object_name).read()
                 for o in s3.list_objects(bucket, prefix, recursive=True)}
    served = {name: (folder / name).read_bytes() for name in DOCS if (folder / name).exists()}
    remove_prefix(s3, bucket, prefix)
    heartbeat = native_path("/tmp/heartbeat", section["sync"]["paths"], run_dir() / "nginx")
    beat = heartbeat.read_text() if heartbeat.exists() else ""
    deadline = time.monotonic() + 60  # a whole sync round after the removal: it copies nothing more
    while (heartbeat.read_text() if heartbeat.exists() else "") == beat and time.monotonic() < deadline:
        time.sleep(0.5)
    for name in DOCS:
        (folder / name).unlink(missing_ok=True)
    yield folder, bucket, prefix
    remove_prefix(s3, bucket, prefix)
    for key, data in published.items():
        s3.put_object(bucket, key, io.BytesIO(data), len(data))
    for name in DOCS:
        (folder / name).unlink(missing_ok=True)
    for name, data in served.items():
        (folder / name).write_bytes(data)


@pytest.fixture(scope="module")
def url(config) -> str:
    node_port = config["nginx"]["service"][0]["node_port"]
    assert node_port == 30084
    return f"http://127.0.0.1:{node_port}"


def test_placeholder_until_docs_are_published(url, site):
    folder, _, _ = site
    assert not (folder / "index.html").exists()
    status, headers, body = get(f"{url}/")
    assert status == 200 and headers.get("X-Dbt-Docs") == "placeholder"
    assert b"The dbt docs have not been generated yet" in body
    assert get(f"{url}/healthz")[0] == 200


def served(url: str, path: str, want: bytes, seconds: float = 45) -> tuple[int, dict, bytes]:
    deadline = time.monotonic() + seconds
    while True:
        answer = get(f"{url}{path}")
        if answer[0] == 200 and want in answer[2] or time.monotonic() > deadline:
            return answer
        time.sleep(1)


def test_docs_published_to_the_bucket_replace_the_placeholder_without_a_restart(url, site, s3, config):
    """As `invoke seed` publishes: the three files of `dbt docs generate`, uploaded under the
    prefix; the pod's sync container copies them into the site within its interval (15 s)."""
    folder, bucket, prefix = site
    files = {
        "manifest.json": json.dumps({"metadata": {"dbt_version": "1.11.16"}, "nodes": {}}).encode(),
        "catalog.json": json.dumps({"metadata": {}, "nodes": {}, "sources": {}}).encode(),
        "index.html": b"<!doctype html><title>dbt Docs</title><div id=app>datamesh docs</div>",
    }
    for name, data in files.items():
        s3.put_object(bucket, prefix + name, io.BytesIO(data), len(data))
    status, headers, body = served(url, "/", b"datamesh docs")
    assert status == 200 and b"datamesh docs" in body and "X-Dbt-Docs" not in headers
    status, headers, body = get(f"{url}/manifest.json")
    assert status == 200 and json.loads(body)["metadata"]["dbt_version"] == "1.11.16"
    assert headers.get("Content-Type", "").startswith("application/json")
    assert get(f"{url}/catalog.json")[0] == 200
    assert get(f"{url}/missing.json")[0] == 404
    assert (folder / "index.html").read_bytes() == files["index.html"]
