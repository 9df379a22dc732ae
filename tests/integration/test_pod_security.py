"""Pod Security admission, enforced by the testbed's real kube-apiserver: `up` converges with every
pod admitted at `restricted`, and a pod below that level is refused by the API server."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.conftest import OUR_NAMESPACES, get, wipe
from testbed import cluster as testbed

PRIVILEGED_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "runs-as-root", "namespace": "sales-domain"},
    "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}]},
}


@pytest.fixture(scope="module")
def converged(datamesh, kubectl):
    """`up` on an empty cluster, so every pod is admitted under the labels the namespaces role sets."""
    wipe(kubectl)
    run = datamesh("up")
    assert run.returncode == 0, run.stderr + run.stdout
    return run


def test_up_converges_with_every_namespace_enforcing_restricted(converged, kubectl):
    for namespace in OUR_NAMESPACES:
        labels = get(kubectl, "namespace", namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", namespace
    pods = json.loads(kubectl("get", "pods", "-A", "-l", "app.kubernetes.io/part-of=datamesh", "-o", "json"))["items"]
    assert {p["metadata"]["namespace"] for p in pods} >= {"jupyterhub", "data-platform", "sales-domain", "marketing-domain"}
    assert converged.totals["failed"] == 0


def test_a_pod_below_restricted_is_refused_by_the_api_server_naming_its_violations(converged, env, kubectl):
    result = subprocess.run([str(testbed.kubectl_path()), "apply", "--server-side", "-f", "-"],
                            input=json.dumps(PRIVILEGED_POD), capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr
    assert "privileged" in result.stderr and "runAsNonRoot" in result.stderr
    assert kubectl("get", "pod", "runs-as-root", "-n", "sales-domain", "--ignore-not-found", "-o", "name").strip() == ""
