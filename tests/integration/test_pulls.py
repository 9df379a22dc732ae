"""The pull-aware wait against kube-apiserver: pods and events read through the real API.

KWOK's pods never pull an image, so the Deployment's pod is bound to a node no kubelet serves
and the test plays the kubelet, writing the status and events it writes while it pulls
(tests/unit/fixtures/record_pulls.py). The node's name is new each time, since the pod GC
deletes pods of a node missing for 40 s. Namespace and labels are the test's own, so the other
integration tests never count its pod.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest

from datamesh import inventory, wait
from datamesh.cluster import Cluster
from datamesh.errors import DatameshError
from tests.unit.fixtures.record_pulls import BAD, GOOD, REGISTRY_ERROR, Kubelet

NAMESPACE = "pull-test"


@pytest.fixture
def cluster(env, monkeypatch) -> Cluster:
    monkeypatch.setenv("KUBECONFIG", env["KUBECONFIG"])
    return Cluster(inventory.load("testbed"))


def _until(found, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds  # a guard against a hung test, not a timing assertion
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {seconds} s")


@pytest.fixture
def unserved(cluster):
    """Makes a Deployment whose one pod lands on a node no kubelet serves, and a kubelet for that pod."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    cluster.apply(namespace)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": NAMESPACE}}
    _until(lambda: cluster.get(account), "default ServiceAccount")
    made: list[tuple[dict, Kubelet]] = []

    def make(image: str) -> tuple[dict, Kubelet]:
        made.append(_deployment(cluster, image))
        return made[-1]

    yield make
    live = cluster.get(namespace)
    cluster.delete(namespace)
    for _, kubelet in made:
        kubelet.remove()
    wait.wait_gone(cluster, [live], 120)


def _deployment(cluster: Cluster, image: str) -> tuple[dict, Kubelet]:
    labels = {"app.kubernetes.io/name": "puller", "app.kubernetes.io/component": "pull-test"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "puller", "namespace": NAMESPACE, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "puller"}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"nodeName": f"unserved-{uuid.uuid4().hex[:8]}", "containers": [
                                  {"name": "trino", "image": image,
                                   "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}},
    }
    cluster.apply(deployment)
    pod = _until(lambda: cluster.pods(NAMESPACE, {"app.kubernetes.io/name": "puller"}), "pod")[0]
    return deployment, Kubelet(cluster, pod, datetime.now(timezone.utc))


def test_a_pull_read_from_the_api_pauses_readiness_and_has_a_limit_of_its_own(cluster, unserved, monkeypatch):
    deployment, kubelet = unserved(GOOD)
    kubelet.event(1, "Normal", "Pulling", f'Pulling image "{GOOD}"')
    kubelet.status(1, {"waiting": {"reason": "ContainerCreating"}})
    monkeypatch.setattr(wait, "PULLS_AFTER", 0)
    with pytest.raises(DatameshError) as caught:
        wait.wait_ready(cluster, [deployment], 1, pull_timeout=3)  # readiness alone would end it after 1 s
    message = str(caught.value)
    assert message.startswith(f"Deployment {NAMESPACE}/puller was still pulling image {GOOD} after 3 s; "
                              f"pod {kubelet.name} is Pending (trino waiting ContainerCreating), events: ")
    assert f'Pulling: Pulling image "{GOOD}"' in message


def test_a_registry_error_read_from_the_api_ends_the_wait_at_once(cluster, unserved, monkeypatch):
    deployment, kubelet = unserved(BAD)
    kubelet.event(1, "Normal", "Pulling", f'Pulling image "{BAD}"')
    kubelet.event(3, "Warning", "Failed", f'Failed to pull image "{BAD}": {REGISTRY_ERROR}')
    kubelet.event(3, "Warning", "Failed", "Error: ErrImagePull")
    kubelet.status(3, {"waiting": {"reason": "ErrImagePull", "message": REGISTRY_ERROR}})
    monkeypatch.setattr(wait, "PULLS_AFTER", 0)
    with pytest.raises(DatameshError) as caught:
        wait.wait_ready(cluster, [deployment], 300)
    assert str(caught.value) == (
        f"the pull-test component's Deployment {NAMESPACE}/puller cannot pull image {BAD} "
        f"(pod {kubelet.name}, ErrImagePull: {REGISTRY_ERROR}); "
        "check the image name and your network, or pin another tag in the inventory's images."
    )
