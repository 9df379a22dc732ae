"""The dbt docs' checks on their NodePort: the site's index page, and once `invoke seed` has
published the docs, the catalog the docs page loads (catalog.json with its nodes)."""

import json

import pytest

from datamesh import lake, probes

NEXT_STEP = "read the sync container's log, `kubectl -n {platform} logs deploy/dbt-docs -c sync --tail 20`, then " \
            "run `invoke seed --only docs` to publish the docs again"


@pytest.fixture(scope="module")
def docs(nodeport):
    return nodeport("dbt-docs")


def test_the_index_page_is_served(docs):
    status, _ = probes.http_get(f"{docs}/")
    assert status == 200, f"the docs server at {docs}/ answered HTTP {status}"


def test_the_published_catalog_is_served(docs, reach, inventory):
    status, body = probes.http_get(f"{docs}/catalog.json")
    if status == 200 and json.loads(body).get("nodes"):
        return
    bucket, prefix = inventory["minio"]["bucket"], inventory["dbt_docs"]["prefix"]
    login = reach.login("minio")
    with reach.open("minio") as (host, port):
        published = lake.stat(probes.s3_client(f"{host}:{port}", login.user, login.password), bucket,
                              f"{prefix}catalog.json")
    if published is None:
        pytest.skip("no dbt docs are published yet: run `invoke seed`")
    pytest.fail(f"the docs are published at s3://{bucket}/{prefix} but the docs server at {docs} answers "
                f"HTTP {status} for catalog.json")
