"""The namespaces' check: each of the inventory's namespaces exists and is Active."""

import pytest

NEXT_STEP = "run `invoke up --only namespaces`; a namespace stuck Terminating waits for its finalizers (`kubectl get ns -o yaml`)"


@pytest.mark.api
def test_each_namespace_exists_and_is_active(cluster, inventory):
    for name in sorted(set(inventory["namespaces"].values())):
        live = cluster.get({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        assert live is not None, f"namespace {name} does not exist"
        phase = (live.get("status") or {}).get("phase")
        assert phase == "Active", f"namespace {name} is {phase}, not Active"
