"""The budget preflight: sums requests and refuses with the numbers when they do not fit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from datamesh import budget, inventory
from datamesh.errors import DatameshError
from tests.unit.conftest import rendered_for


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
