"""datamesh/cluster.py against kube-apiserver: apply, dry run, get, delete, discovery."""

from __future__ import annotations

import json

import pytest

from datamesh import inventory
from datamesh.cluster import Cluster
from datamesh.errors import DatameshError
from datamesh.kube import discovery_file
from datamesh.manifests import metadata


@pytest.fixture
def cluster(env, monkeypatch) -> Cluster:
    monkeypatch.setenv("KUBECONFIG", env["KUBECONFIG"])
    return Cluster(inventory.load("testbed"))


def configmap(name: str, value: str = "1") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata("io-test", name, "default"), "data": {"v": value}}


def test_apply_get_delete_roundtrip(cluster):
    obj = configmap("io-roundtrip")
    applied = cluster.apply(obj)
    assert applied["data"] == {"v": "1"}
    assert applied["metadata"]["managedFields"][0]["manager"] == "datamesh"
    assert cluster.get(obj)["metadata"]["uid"] == applied["metadata"]["uid"]
    assert cluster.delete(obj) is True
    assert cluster.get(obj) is None
    assert cluster.delete(obj) is False


def test_dry_run_changes_nothing(cluster):
    obj = configmap("io-dry-run")
    cluster.apply(obj)
    try:
        answer = cluster.apply(configmap("io-dry-run", "2"), dry_run=True)
        assert answer["data"] == {"v": "2"}
        assert cluster.get(obj)["data"] == {"v": "1"}
    finally:
        cluster.delete(obj)


def test_refused_object_is_one_sentence_naming_it(cluster):
    bad = configmap("Not_A_Valid_Name")
    with pytest.raises(DatameshError, match=r"the API server refused to apply ConfigMap default/Not_A_Valid_Name \(422"):
        cluster.apply(bad)


def test_discovery_is_done_once_per_group_version(cluster):
    for name in ("io-a", "io-b"):
        cluster.get(configmap(name))
    gets = cluster.requests["GET"]
    cluster.get(configmap("io-c"))
    assert cluster.requests["GET"] == gets + 1


def test_discovery_is_kept_on_disk_per_server_and_version(env, monkeypatch, tmp_path):
    """A second run asks nothing of discovery; a kept answer that lacks a kind is asked again once."""
    monkeypatch.setenv("KUBECONFIG", env["KUBECONFIG"])
    monkeypatch.setenv("DATAMESH_CACHE", str(tmp_path))
    first = Cluster(inventory.load("testbed"))
    version = first.ping()
    first.get(configmap("io-a"))
    kept = discovery_file(first.server, version, "v1")
    assert "ConfigMap" in kept.read_text()

    second = Cluster(inventory.load("testbed"))
    second.ping()
    second.get(configmap("io-a"))
    assert second.requests == {"GET": 2}  # /version and the object: no discovery

    answer = json.loads(kept.read_text())
    kept.write_text(json.dumps({"resources": [r for r in answer["resources"] if r["kind"] != "ConfigMap"]}))
    third = Cluster(inventory.load("testbed"))
    third.ping()
    third.get(configmap("io-a"))
    assert third.requests == {"GET": 3}  # /version, discovery of v1 again, the object
    assert "ConfigMap" in kept.read_text()
