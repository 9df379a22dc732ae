"""`down`'s decisions: which components, what is deleted, kept or left alone."""

from __future__ import annotations

import pytest

from datamesh import playbook, teardown
from datamesh.errors import DatameshError


@pytest.fixture(scope="module")
def roles():
    return playbook.load("up").roles


def obj(kind: str, name: str, namespace: str | None = "data-platform", component: str | None = None, **meta) -> dict:
    labels = {"app.kubernetes.io/part-of": "datamesh", "app.kubernetes.io/component": component} if component else {}
    metadata = {"name": name, "labels": labels, **meta}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata}


def test_everything_goes_in_reverse_playbook_order(roles):
    assert teardown.select(roles, [], False, set()) == list(reversed([r.name for r in roles]))


def test_removing_a_dependency_of_a_present_component_is_refused(roles):
    with pytest.raises(DatameshError) as caught:
        teardown.select(roles, ["hive-metastore"], False, {"trino", "hive-metastore"})
    assert str(caught.value) == ("hive-metastore is needed by trino, which would stay; add trino to --components, "
                                 "or pass --cascade to remove it too.")


def test_postgres_is_needed_by_the_metastore_and_trino(roles):
    with pytest.raises(DatameshError, match="postgres is needed by hive-metastore, trino"):
        teardown.select(roles, ["postgres"], False, {"postgres", "hive-metastore", "trino", "grafana"})


def test_cascade_adds_the_dependents_transitively(roles):
    chosen = teardown.select(roles, ["postgres"], True, {"postgres", "hive-metastore", "trino"})
    assert chosen == ["trino", "hive-metastore", "postgres"]


def test_absent_dependents_do_not_block(roles):
    assert teardown.select(roles, ["hive-metastore"], False, {"hive-metastore"}) == ["hive-metastore"]


def test_unknown_component_is_named(roles):
    with pytest.raises(DatameshError, match="--components names trinoo, which is no component"):
        teardown.select(roles, ["trinoo"], False, set())


def live_objects() -> list[dict]:
    return [
        obj("Deployment", "trino-coordinator", component="trino"),
        obj("Pod", "trino-coordinator-abc", component="trino", ownerReferences=[{"kind": "ReplicaSet"}]),
        obj("StatefulSet", "postgres-sales", component="postgres"),
        obj("PersistentVolumeClaim", "data-postgres-sales-0", component="postgres"),
        obj("Secret", "postgres-sales-credentials", component="credentials"),
        obj("Namespace", "data-platform", namespace=None, component="namespaces"),
        obj("Namespace", "sales-domain", namespace=None, component="namespaces"),
        obj("ConfigMap", "foreign"),
        obj("ConfigMap", "kube-root-ca.crt"),
    ]


def names(objects: list[dict]) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objects]


def test_only_the_chosen_component_is_planned_and_owned_objects_go_with_their_owner():
    plan = teardown.plan(live_objects(), ["trino"], purge=False)
    assert names(plan.delete["trino"]) == ["Deployment/trino-coordinator"]
    assert "postgres" not in plan.delete
    assert names(plan.foreign) == ["ConfigMap/foreign"]


def test_without_purge_volumes_namespaces_and_credentials_are_kept():
    plan = teardown.plan(live_objects(), ["postgres", "credentials", "namespaces"], purge=False)
    assert names(plan.delete["postgres"]) == ["StatefulSet/postgres-sales"]
    assert names(plan.keep["postgres"]) == ["PersistentVolumeClaim/data-postgres-sales-0"]
    assert names(plan.keep["credentials"]) == ["Secret/postgres-sales-credentials"]
    assert plan.delete["namespaces"] == []


def test_purge_deletes_data_but_releases_a_namespace_holding_foreign_objects():
    plan = teardown.plan(live_objects(), ["postgres", "credentials", "namespaces"], purge=True)
    assert names(plan.delete["postgres"]) == ["StatefulSet/postgres-sales", "PersistentVolumeClaim/data-postgres-sales-0"]
    assert names(plan.delete["credentials"]) == ["Secret/postgres-sales-credentials"]
    assert names(plan.delete["namespaces"]) == ["Namespace/sales-domain"]
    assert names(plan.release) == ["Namespace/data-platform"]


def test_purge_confirmation_needs_the_word():
    plan = teardown.plan(live_objects(), ["postgres"], purge=True)
    teardown.confirm_purge(plan, lambda prompt: "purge")
    with pytest.raises(DatameshError, match="purge not confirmed, nothing was deleted"):
        teardown.confirm_purge(plan, lambda prompt: "yes")


def test_stale_objects_are_what_a_role_made_and_renders_no_more():
    from datamesh import role as roles
    managed = {"app.kubernetes.io/managed-by": "datamesh"}
    def live(kind, name, component, **meta):
        o = obj(kind, name, component=component, **meta)
        o["metadata"]["labels"].update(managed)
        return o
    rendered = [obj("Deployment", "trino-coordinator", component="trino")]
    found = roles.stale([
        live("Deployment", "trino-coordinator", "trino"),
        live("Deployment", "trino-worker", "trino"),                   # workers scaled to 0
        live("PersistentVolumeClaim", "old-data", "trino"),            # data: never pruned
        live("Pod", "trino-worker-x", "trino", ownerReferences=[{}]),  # goes with its owner
        live("Deployment", "grafana", "grafana"),                      # another role's
    ], "trino", rendered)
    assert names(found) == ["Deployment/trino-worker"]
