"""Helpers of the integration tier (the cluster testbed's fixtures are shared: tests/conftest.py):
reading objects with the testbed's kubectl, emptying the cluster, variants of the testbed inventory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from datamesh import ROOT

OUR_NAMESPACES = ("jupyterhub", "data-platform", "sales-domain", "marketing-domain")


def get(kubectl, kind: str, name: str, namespace: str | None = None) -> dict:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    return json.loads(kubectl(*args))


def ours(kubectl) -> dict[str, dict]:
    """Every object labelled as ours, keyed by 'Kind namespace/name'."""
    out = {}
    kinds = "namespaces,secrets,configmaps,services,statefulsets,deployments,jobs,persistentvolumeclaims,serviceaccounts,roles,rolebindings"
    listing = json.loads(kubectl("get", kinds, "-A", "-l", "app.kubernetes.io/part-of=datamesh", "-o", "json"))
    for item in listing["items"]:
        meta = item["metadata"]
        out[f"{item['kind']} {meta.get('namespace', '')}/{meta['name']}"] = item
    return out


@pytest.fixture
def empty_cluster(kubectl):
    """No namespace of ours left: deleted and waited for (PVCs and all)."""
    wipe(kubectl)


def wipe(kubectl) -> None:
    existing = [ns for ns in OUR_NAMESPACES if kubectl("get", "namespace", ns, "--ignore-not-found", "-o", "name").strip()]
    if existing:
        kubectl("delete", "namespace", *existing, "--wait=true", "--timeout=180s")


def write_inventory(tmp_path: Path, settings: dict) -> Path:
    """A testbed inventory with extra settings, merged over inventory/testbed.yml."""
    base = yaml.safe_load((ROOT / "inventory" / "testbed.yml").read_text())
    for section, values in settings.items():
        base.setdefault(section, {}).update(values)
    path = tmp_path / "testbed-variant.yml"
    path.write_text(yaml.safe_dump(base))
    return path
