"""The checks every role gets, beside its own roles/<name>/verify.py: its namespaces Active, its pods
Ready and not restarting in a loop, its volumes Bound, its Services with a ready endpoint, and every
Secret key it renders or reads present and non-empty (these need only the Kubernetes API: they are
datamesh/live_checks.py's, which `invoke up` runs after each role's wait without pytest), and each
NodePort it publishes reachable from the user's machine. Parametrized by `role`
(datamesh/fixtures.py) over the selected roles; each reads every kind once per session.
"""

from __future__ import annotations

import pytest

from datamesh import live_checks
from datamesh.live_checks import (Listing, has_pods, has_secret_keys, has_services, keeps_volumes, namespaces_active,
                                  pods_ready, renders_namespaces, secrets_filled, services_have_endpoints,
                                  volumes_bound)

NEXT_STEP = live_checks.NEXT_STEP


@pytest.fixture(scope="session")
def listed(cluster):
    """kind -> the live objects of ours of that kind, listed once across the cluster."""
    return Listing(cluster)


def publishes_nodeports(rendered: list[dict]) -> bool:
    return any("nodePort" in p for o in rendered if o["kind"] == "Service" for p in o["spec"]["ports"])


# The checks `invoke up` also runs after each role, written once in datamesh/live_checks.py.

@pytest.mark.applies.with_args(renders_namespaces)
def test_its_namespaces_exist_and_are_active(role, rendered, listed, cluster):
    problem = namespaces_active(role, rendered, listed, cluster)
    assert problem is None, problem


@pytest.mark.applies.with_args(has_pods)
def test_pods_are_ready_and_not_restarting_in_a_loop(role, rendered, listed, cluster):
    problem = pods_ready(role, rendered, listed, cluster)
    assert problem is None, problem


@pytest.mark.applies.with_args(keeps_volumes)
def test_volumes_are_bound(role, rendered, listed, cluster):
    problem = volumes_bound(role, rendered, listed, cluster)
    assert problem is None, problem


@pytest.mark.applies.with_args(has_services)
def test_services_have_a_ready_endpoint(role, rendered, listed, cluster):
    problem = services_have_endpoints(role, rendered, listed, cluster)
    assert problem is None, problem


@pytest.mark.applies.with_args(has_secret_keys)
def test_every_secret_it_renders_or_reads_holds_its_keys(role, rendered, listed, cluster):
    problem = secrets_filled(role, rendered, listed, cluster)
    assert problem is None, problem


@pytest.mark.applies.with_args(publishes_nodeports)
def test_its_nodeports_are_reachable_from_the_user_machine(role, rendered, host, nodeports, not_run):
    ports = [p["nodePort"] for o in rendered if o["kind"] == "Service" for p in o["spec"]["ports"] if "nodePort" in p]
    names = {port: name for name, port in nodeports.ports.items()}
    for port in ports:
        not_run(names.get(port, role))
        assert host.addr(nodeports.address).port(port).is_reachable, (
            f"nothing accepts connections on {nodeports.address}:{port} from {nodeports.where}: on kind or k3d the "
            "cluster must map the NodePorts (`invoke cluster-config`); elsewhere check hosts.address")
