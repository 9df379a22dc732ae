"""The inventory's security switches on a real API server: switching the network policies off
removes the ones an earlier `up` applied (they would stay enforced otherwise), and on again
brings them back; `invoke status` names the weakened protection and its key."""

from __future__ import annotations

import json

from tests.integration.conftest import write_inventory


def policies(kubectl) -> set[str]:
    listing = json.loads(kubectl("get", "networkpolicies", "-A", "-l", "app.kubernetes.io/part-of=datamesh", "-o", "json"))
    return {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in listing["items"]}


def test_network_policies_switched_off_are_removed_and_switched_on_come_back(datamesh, kubectl, tmp_path):
    assert datamesh("up").returncode == 0
    applied = policies(kubectl)
    assert {"sales-domain/default-deny-ingress", "sales-domain/postgres", "data-platform/trino-coordinator"} <= applied
    off = write_inventory(tmp_path, {"security": {"network_policies": False}})
    run = datamesh("up", "--inventory", str(off))
    assert run.returncode == 0, run.stderr + run.stdout
    assert policies(kubectl) == set()
    status = datamesh("status", "--inventory", str(off))
    assert "network policies: OFF (security.network_policies: false)" in status.stdout
    assert datamesh("up").returncode == 0
    assert policies(kubectl) == applied
