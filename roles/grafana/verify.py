"""Grafana's checks on its NodePort: /api/health with its database ok, and every provisioned data
source healthy through Grafana's own health API (GET /api/datasources/uid/<uid>/health, Grafana 9
and later; the PostgreSQL plugin answers it with a ping), as the admin the inventory's Secret holds."""

import base64
import json

import pytest
import yaml

from datamesh import probes
from datamesh.manifests import read

NEXT_STEP = "read `kubectl -n {platform} logs deploy/grafana --tail 50`, then run `invoke up --only grafana`"
DATASOURCES = [d["uid"] for d in yaml.safe_load(read("grafana/datasources.yaml"))["datasources"]]


@pytest.fixture(scope="module")
def grafana(nodeport):
    return nodeport("grafana")


def test_health_says_its_database_is_ok(grafana):
    status, body = probes.http_get(f"{grafana}/api/health")
    assert status == 200, f"Grafana's /api/health at {grafana} answered HTTP {status}"
    assert json.loads(body).get("database") == "ok", f"Grafana's own database is not ok: {body[:200]!r}"


@pytest.mark.parametrize("uid", DATASOURCES)
@pytest.mark.next_step("if Grafana's own health passes, check that the data source's database is up (`invoke verify "
                       "--only postgres`) and that grafana-datasource-credentials holds its login, then restart Grafana")
def test_each_provisioned_datasource_is_healthy(grafana, reach, uid):
    login = reach.login("grafana")
    auth = base64.b64encode(f"{login.user}:{login.password}".encode()).decode()
    status, body = probes.http_get(f"{grafana}/api/datasources/uid/{uid}/health", {"Authorization": f"Basic {auth}"})
    answer = json.loads(body) if body.strip().startswith(b"{") else {}
    assert status != 404, f"Grafana has no data source {uid}: is files/grafana/datasources.yaml provisioned?"
    assert status == 200 and answer.get("status") == "OK", \
        f"Grafana's data source {uid} is not healthy (HTTP {status}): {answer.get('message', body[:200])}"
