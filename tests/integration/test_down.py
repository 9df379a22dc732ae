"""`invoke down` on the cluster testbed: exactly what was asked goes, everyone's data stays."""

from __future__ import annotations

import pytest

from tests.integration.conftest import get, ours


@pytest.fixture(scope="module", autouse=True)
def converged(datamesh, kubectl):
    run = datamesh("up")
    assert run.returncode == 0, run.stderr
    kubectl("create", "configmap", "foreign", "-n", "data-platform", "--from-literal=owner=someone-else")
    yield
    kubectl("delete", "configmap", "foreign", "-n", "data-platform", "--ignore-not-found")


def volumes(kubectl) -> dict[str, str]:
    return {key: obj["metadata"]["uid"] for key, obj in ours(kubectl).items() if key.startswith("PersistentVolumeClaim ")}


def component_of(key: str, objects: dict) -> str:
    return objects[key]["metadata"]["labels"]["app.kubernetes.io/component"]


def test_down_of_trino_removes_trino_and_nothing_else(datamesh, kubectl):
    before = ours(kubectl)
    run = datamesh("down", "--components", "trino")
    assert run.returncode == 0, run.stderr
    after = ours(kubectl)
    trino = {key for key in before if component_of(key, before) == "trino"}
    assert trino and not trino & set(after)
    assert set(after) == set(before) - trino
    changed = [key for key in after if after[key]["metadata"]["resourceVersion"] != before[key]["metadata"]["resourceVersion"]]
    assert changed == []
    assert "ConfigMap data-platform/foreign: not labelled" in run.stdout

    restored = datamesh("up")
    assert restored.returncode == 0, restored.stderr
    assert set(ours(kubectl)) == set(before)
    assert {o["name"] for r in restored.report["roles"] for o in r["objects"] if o["status"] == "changed"} == \
        {before[key]["metadata"]["name"] for key in trino}


def test_removing_a_dependency_is_refused_naming_the_dependents(datamesh, audit):
    mark = audit.mark()
    run = datamesh("down", "--components", "hive-metastore")
    assert run.returncode != 0
    assert "hive-metastore is needed by trino, which would stay" in run.stderr and "--cascade" in run.stderr
    assert audit.writes(mark) == []


def test_cascade_dry_run_lists_the_dependents_and_writes_nothing(datamesh, audit):
    mark = audit.mark()
    run = datamesh("down", "--components", "hive-metastore", "--cascade", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert "would delete [trino] Deployment data-platform/trino-coordinator" in run.stdout
    assert "would delete [hive-metastore] Deployment data-platform/hive-metastore" in run.stdout
    assert "[postgres]" not in run.stdout
    assert audit.writes(mark) == []


def test_purge_without_a_terminal_or_yes_is_refused(datamesh, audit):
    mark = audit.mark()
    run = datamesh("down", "--purge")
    assert run.returncode != 0
    assert "--purge deletes data volumes and needs a confirmation: run it on a terminal, or add --yes." in run.stderr
    assert audit.writes(mark) == []


def test_selective_without_a_terminal_asks_for_components(datamesh):
    run = datamesh("down", "--selective")
    assert run.returncode != 0
    assert "--selective asks on a terminal and there is none" in run.stderr


def test_down_keeps_every_volume_and_a_second_down_changes_nothing(datamesh, kubectl, audit):
    kept = volumes(kubectl)
    assert len(kept) >= 7
    run = datamesh("down")
    assert run.returncode == 0, run.stderr
    assert volumes(kubectl) == kept
    assert get(kubectl, "configmap", "foreign", "data-platform")
    left = {component_of(key, ours(kubectl)) for key in ours(kubectl)}
    # what owns volumes (hive-metastore: its jars volume, so an `up` after `down` downloads nothing)
    assert left <= {"namespaces", "credentials", "postgres", "minio", "hive-metastore", "jupyterhub", "dbt-docs"}

    mark = audit.mark()
    again = datamesh("down")
    assert again.returncode == 0 and again.totals["changed"] == 0
    assert audit.writes(mark) == []


def test_up_after_down_comes_back_on_the_kept_volumes(datamesh, kubectl):
    kept = volumes(kubectl)
    run = datamesh("up")
    assert run.returncode == 0, run.stderr
    assert volumes(kubectl) == kept
    for namespace, name in (("data-platform", "postgres-sales"), ("data-platform", "minio")):
        assert get(kubectl, "statefulset", name, namespace)["status"].get("readyReplicas") == 1


def test_purge_with_yes_leaves_nothing_of_ours_but_the_foreign_object(datamesh, kubectl):
    run = datamesh("down", "--purge", "--yes")
    assert run.returncode == 0, run.stderr
    assert ours(kubectl) == {}
    assert get(kubectl, "configmap", "foreign", "data-platform")["data"] == {"owner": "someone-else"}
    assert "released: Namespace data-platform" in run.stdout
