"""The service testbed for the e2e tier: the platform's real programs, run natively with the
config files the roles render (testbed/rendered.py), started once per session.

A testbed that already runs with the current render is reused and left running (a developer's
`python -m testbed.services up`); otherwise this session installs what is missing (cached),
starts it, and stops it at the end (DATAMESH_KEEP_TESTBED=1 keeps it). It needs root (/etc/hosts,
port 80, PostgreSQL's own user): without root the tier is skipped with that reason. CI runs as
root, so there it always runs.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass

import pytest

from datamesh import inventory, probes
from datamesh.cluster import Cluster
from datamesh.endpoints import Endpoints
from datamesh.trino import Access, access
from testbed import services as svc
from testbed.common import TestbedError
from testbed.rendered import config_from_render

INVENTORY = os.environ.get("DATAMESH_E2E_INVENTORY", "docker-desktop")  # the lab logins the workshop material uses


@dataclass
class Testbed:
    config: dict          # what the services run with: config_from_render(INVENTORY)
    summary: dict         # start times and RSS, from up()
    started_here: bool
    startup_s: float      # wall time of up() in this session (0 when reused)


def _running_with(config: dict) -> bool:
    """True when every testbed process is up and was started with exactly this config."""
    status = svc.status()
    if not status or not all(s["alive"] and s.get("port_open", True) for s in status.values()):
        return False
    try:
        return svc.saved_config() == json.loads(json.dumps(config, default=str))
    except (TestbedError, ValueError):
        return False


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    if os.geteuid() != 0:
        pytest.skip("the service testbed needs root (/etc/hosts, port 80, PostgreSQL's own user); CI runs as root")
    # generated Secrets keep the values of the last run, as live Secrets do across `invoke up`
    config = config_from_render(INVENTORY, live=svc.previous_secrets())
    started_here = not _running_with(config)
    startup = 0.0
    if started_here:
        t0 = time.monotonic()
        summary = svc.up(config)
        startup = time.monotonic() - t0
    else:
        summary = json.loads((svc.run_dir() / "summary.json").read_text())
    yield Testbed(svc.saved_config(), summary, started_here, startup)
    if started_here and not os.environ.get("DATAMESH_KEEP_TESTBED"):
        svc.down()


@pytest.fixture(scope="session")
def config(testbed) -> dict:
    return testbed.config


def address(section: dict) -> tuple[str, int]:
    """The in-cluster name and port of a config section's first Service (what clients connect to)."""
    service = section["service"][0]
    return service["host"], service["port"]


def trino_login(config: dict, user: str = "admin") -> Access:
    """`user`'s Trino login from the rendered Secrets (none when the inventory turns Trino auth off)."""
    users = config["secrets"].get("data-platform/trino-users")
    if not users:
        return Access(user)
    return Access(user, users[f"{user}-password"], config["secrets"]["data-platform/trino-tls"]["ca.crt"])


def trino_url(config: dict, login: Access, node_port: bool = False) -> str:
    """The testbed Trino's in-cluster address (or its NodePort) on the port `login` uses: HTTPS with a password."""
    wanted = 8443 if login.password is not None else 8080
    service = next(s for s in config["trino"]["service"] if s["port"] == wanted)
    return login.url("127.0.0.1", service["node_port"]) if node_port else login.url(service["host"], service["port"])


@pytest.fixture(scope="session")
def query(config):
    """query(sql) -> rows, on the testbed's Trino at its in-cluster address, as admin."""
    login = trino_login(config)
    return functools.partial(login.query, trino_url(config, login))


@pytest.fixture(scope="session")
def s3(config):
    """A minio client on the object store, with the login from the rendered minio-credentials."""
    creds = config["secrets"]["data-platform/minio-credentials"]
    host, port = address(config["s3"])
    return probes.s3_client(f"{host}:{port}", creds["root-user"], creds["root-password"])


def sql(reach, endpoint: str, query: str) -> list[tuple]:
    """Rows of `query` on a PostgreSQL endpoint, through a port-forward, with its Secret's login."""
    login = reach.login(endpoint)
    with reach.open(endpoint) as (host, port):
        return probes.postgres_query(host, port, login.user, login.password, login.database, query)


def trino(reach, query: str) -> list[list]:
    """Rows of `query` on Trino, through a port-forward, as admin."""
    login = access(reach)
    with reach.open("trino") as (host, port):
        return login.query(login.url(host, port), query)


def remove_prefix(client, bucket: str, prefix: str) -> None:
    for o in client.list_objects(bucket, prefix, recursive=True):
        client.remove_object(bucket, o.object_name)


# ------------------------------------------------------------------ the joined testbed


@pytest.fixture(scope="session")
def joined(testbed, cluster_testbed, datamesh):
    """Both testbeds joined, and the platform converged on the cluster testbed by `invoke up`.
    Links this session made are removed at its end; a developer's joined testbed stays joined."""
    from testbed import joined as link

    joined_before = link.status()["joined"]
    link.up()
    run = datamesh("up", "--inventory", "testbed")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    yield run
    if not joined_before:
        link.down()


@pytest.fixture(scope="session")
def reach(joined, cluster_testbed) -> Endpoints:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(cluster_testbed))
        inv = inventory.load("testbed")
        yield Endpoints(Cluster(inv), inv)
