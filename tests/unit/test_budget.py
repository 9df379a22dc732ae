"""The budget preflight: sums requests and refuses with the numbers when they do not fit; warns about limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from datamesh import budget, inventory
from datamesh.errors import DatameshError
from tests.unit.helpers import GiB, find, rendered_for


def node(cpu: str, memory: str, unschedulable: bool = False) -> dict:
    return {"spec": {"unschedulable": unschedulable}, "status": {"allocatable": {"cpu": cpu, "memory": memory}}}


def pod(cpu: str, memory: str, ours: bool = False, phase: str = "Running") -> dict:
    labels = {"app.kubernetes.io/part-of": "datamesh"} if ours else {}
    return {"metadata": {"labels": labels}, "status": {"phase": phase},
            "spec": {"containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}


def platform_manifests() -> list[dict]:
    return [obj for objects in rendered_for("docker-desktop").values() for obj in objects]


def postgres_manifests() -> list[dict]:
    return rendered_for("docker-desktop")["postgres"]


def test_requests_of_the_five_postgres_instances():
    want = budget.requested(postgres_manifests())
    assert want == {"cpu": Decimal("0.5"), "memory": Decimal(5 * 256 * 2**20)}


def test_init_containers_count_by_their_largest():
    spec = {"containers": [{"resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}
    assert budget.pod_requests(spec) == {"cpu": Decimal(1), "memory": Decimal(2**30)}


def test_free_ignores_our_pods_finished_pods_and_cordoned_nodes():
    allocatable, used = budget.free(
        [node("4", "8Gi"), node("8", "16Gi", unschedulable=True)],
        [pod("1", "1Gi"), pod("2", "2Gi", ours=True), pod("3", "3Gi", phase="Succeeded")],
    )
    assert allocatable == {"cpu": Decimal(4), "memory": Decimal(8 * 2**30)}
    assert used == {"cpu": Decimal(1), "memory": Decimal(2**30)}


def test_fits_on_a_docker_desktop_sized_node():
    allocatable, used = budget.free([node("4", "8Gi")], [pod("850m", "300Mi")])
    budget.check(budget.requested(platform_manifests()), allocatable, used, inventory.load("docker-desktop"))


def test_too_small_a_cluster_is_refused_with_the_numbers():
    allocatable, used = budget.free([node("4", "1Gi")], [pod("100m", "100Mi")])
    with pytest.raises(DatameshError) as caught:
        budget.check(budget.requested(postgres_manifests()), allocatable, used, inventory.load("docker-desktop"))
    message = str(caught.value)
    assert "requests 0.5 CPU and 1.2 GiB memory" in message
    assert "4 CPU and 1.0 GiB memory allocatable" in message
    assert "memory will not fit" in message and "docker-desktop.yml" in message


# -- limits: a warning, never a refusal ------------------------------------------------------

def workload(requests: dict, limits: dict, replicas: int = 1, annotations: dict | None = None) -> dict:
    return {"kind": "Deployment", "metadata": {"name": "w", "namespace": "n", "annotations": annotations or {}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"resources": {"requests": requests, "limits": limits}}]}}}}


def test_limits_of_the_five_postgres_instances():
    assert budget.requested(postgres_manifests(), kind="limits") == {"cpu": Decimal("2.5"), "memory": Decimal(5 * 512 * 2**20)}


def test_limits_of_pods_a_workload_starts_come_from_extra_limits_else_extra_requests():
    declared = workload({}, {}, annotations={budget.EXTRA_REQUESTS: "cpu=250m,memory=1Gi", budget.EXTRA_LIMITS: "cpu=2,memory=2Gi"})
    assert budget.requested([declared], kind="limits") == {"cpu": Decimal(2), "memory": Decimal(2 * 2**30)}
    assert budget.requested([declared]) == {"cpu": Decimal("0.25"), "memory": Decimal(2**30)}
    undeclared = workload({}, {}, annotations={budget.EXTRA_REQUESTS: "cpu=250m,memory=1Gi"})
    assert budget.requested([undeclared], kind="limits") == {"cpu": Decimal("0.25"), "memory": Decimal(2**30)}


def test_limits_that_fit_give_no_warning():
    allocatable, _ = budget.free([node("16", "32Gi")], [])
    assert budget.check_limits(budget.requested(platform_manifests(), kind="limits"), allocatable,
                               inventory.load("docker-desktop")) is None


def test_limits_beyond_the_nodes_warn_with_the_numbers():
    limits = budget.requested([workload({"cpu": "1", "memory": "1Gi"}, {"cpu": "3", "memory": "12Gi"}, replicas=2)], kind="limits")
    allocatable, _ = budget.free([node("8", "7.7Gi")], [])
    message = budget.check_limits(limits, allocatable, inventory.load("docker-desktop"))
    assert message == (
        "the platform's limits add up to 6 CPU and 24.0 GiB memory, more than the 8 CPU and 7.7 GiB memory the cluster's "
        "nodes have allocatable, so it starts (its requests fit) but under load memory can run out and the kernel then "
        "kills containers; give the cluster more resources, or lower resources.*.limits in docker-desktop.yml."
    )
    cpu_only = budget.check_limits({"cpu": Decimal(9), "memory": Decimal(2**30)}, allocatable, inventory.load("docker-desktop"))
    assert "under load containers get less CPU than their limits allow;" in cpu_only


class NodesAndPods:
    server, hint = "https://127.0.0.1:6443", "start it"

    def __init__(self, nodes: list[dict], pods: list[dict]):
        self._nodes, self._pods = nodes, pods

    def nodes(self) -> list[dict]:
        return self._nodes

    def list(self, api_version: str, kind: str) -> list[dict]:
        assert (api_version, kind) == ("v1", "Pod")
        return self._pods


def test_preflight_warns_about_limits_and_goes_on():
    """Docker Desktop's default 8 GiB VM: the requests fit, the limits do not; `up` is told, not stopped."""
    heard: list[str] = []
    cluster = NodesAndPods([node("8", "7.7Gi")], [pod("850m", "300Mi")])
    budget.preflight(cluster, platform_manifests(), inventory.load("docker-desktop"), warn=heard.append)
    limits = budget.requested(platform_manifests(), kind="limits")
    assert limits["memory"] > Decimal("7.7") * 2**30
    assert len(heard) == 1 and heard[0].startswith(f"the platform's limits add up to {budget.show(limits)}, more than")


def test_preflight_still_refuses_requests_that_do_not_fit_before_any_warning():
    heard: list[str] = []
    cluster = NodesAndPods([node("4", "1Gi")], [])
    with pytest.raises(DatameshError, match="memory will not fit"):
        budget.preflight(cluster, platform_manifests(), inventory.load("docker-desktop"), warn=heard.append)
    assert heard == []


# -- the user servers JupyterHub starts, and the whole platform on Docker Desktop ------------------

def test_hub_declares_the_user_server_requests(dd):
    hub = find(dd["jupyterhub"], "Deployment", "hub")
    assert hub["metadata"]["annotations"]["datamesh.io/extra-requests"] == "cpu=250m,memory=1Gi"
    assert budget.extra_requests(hub) == {"cpu": Decimal("0.25"), "memory": Decimal(GiB)}
    assert budget.extra_requests(hub, budget.EXTRA_LIMITS) == {"cpu": Decimal(2), "memory": Decimal(2 * GiB)}
    own = budget.requested([hub])
    assert own == {"cpu": Decimal("0.35"), "memory": Decimal(GiB + 256 * 2**20)}  # the hub itself plus one server


def test_extra_requests_count_for_any_object_and_refuse_nonsense():
    annotated = {"kind": "ConfigMap", "metadata": {"name": "x", "annotations": {"datamesh.io/extra-requests": "memory=512Mi"}}}
    assert budget.requested([annotated]) == {"cpu": Decimal(0), "memory": Decimal(512 * 2**20)}
    assert budget.extra_requests({"kind": "Deployment", "metadata": {"name": "y"}}) == {"cpu": 0, "memory": 0}
    for bad in ("cpu", "gpu=1", "cpu=lots", "memory=1Gi,cpu"):
        obj = {"kind": "Deployment", "metadata": {"name": "hub", "namespace": "jupyterhub",
                                                  "annotations": {"datamesh.io/extra-requests": bad}}}
        with pytest.raises(DatameshError, match="Deployment jupyterhub/hub has annotation datamesh.io/extra-requests"):
            budget.extra_requests(obj)


def test_platform_and_the_admins_server_fit_a_default_docker_desktop(dd):
    want = budget.requested([o for objects in dd.values() for o in objects])
    # Docker Desktop's default VM: 8 GiB, of which its node offers about 7.7 GiB; its system pods ask ~0.85 CPU, 300Mi.
    allocatable, used = budget.free([{"status": {"allocatable": {"cpu": "8", "memory": "7.7Gi"}}}],
                                    [{"spec": {"containers": [{"resources": {"requests": {"cpu": "850m", "memory": "300Mi"}}}]}}])
    budget.check(want, allocatable, used, inventory.load("docker-desktop"))
    apps = budget.requested([o for role in ("jupyterhub", "grafana", "dbt-docs") for o in dd[role]])
    assert apps["memory"] < Decimal("1.5") * GiB and apps["cpu"] < 1


def test_platform_fits_docker_desktop_with_room_for_a_user_server():
    """All of the platform's requests plus a 1Gi single-user server fit in 8Gi."""
    manifests = [obj for objects in rendered_for("docker-desktop").values() for obj in objects]
    want = budget.requested(manifests)
    assert want["memory"] + 1 * GiB <= 8 * GiB, f"{want['memory'] / GiB:.2f} GiB requested"
    rendered = rendered_for("docker-desktop")
    data = budget.requested([obj for name in ("minio", "hive-metastore", "trino") for obj in rendered[name]])
    assert data == {"cpu": Decimal("0.65"), "memory": Decimal(int(2.375 * GiB))}  # versitygw asks 128Mi where MinIO asked 512Mi
