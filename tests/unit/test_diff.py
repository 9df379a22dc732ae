"""The planner's decision: an unchanged live object means no write; drift and edits mean one."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest

from datamesh import diff
from tests.unit.helpers import rendered_for

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def desired(kind: str, name: str, role: str = "postgres") -> dict:
    obj = next(o for o in rendered_for("docker-desktop")[role] if o["kind"] == kind and o["metadata"]["name"] == name)
    return diff.stamp(obj)


@pytest.mark.parametrize("fixture,kind,name,role", [
    ("statefulset-postgres-sales.json", "StatefulSet", "postgres-sales", "postgres"),
    ("service-postgres-sales.json", "Service", "postgres-sales", "postgres"),
    ("secret-postgres-sales-credentials.json", "Secret", "postgres-sales-credentials", "credentials"),
    ("namespace-data-platform.json", "Namespace", "data-platform", "namespaces"),
])
def test_live_object_as_the_api_server_returned_it_needs_no_apply(fixture, kind, name, role):
    """Fixtures are what kube-apiserver returned after our own apply: defaults, status and managedFields added."""
    assert not diff.needs_apply(desired(kind, name, role), recorded(fixture))


def test_missing_object_needs_apply():
    assert diff.needs_apply(desired("Service", "postgres-sales"), None)


def test_field_changed_behind_our_back_needs_apply():
    live = recorded("statefulset-postgres-sales.json")
    live["spec"]["replicas"] = 3
    want = desired("StatefulSet", "postgres-sales")
    assert diff.needs_apply(want, live)


def test_field_removed_from_the_role_needs_apply_through_the_fingerprint():
    live = recorded("statefulset-postgres-sales.json")
    want = copy.deepcopy(desired("StatefulSet", "postgres-sales"))
    del want["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert diff.is_subset(want["spec"], live["spec"])
    assert diff.needs_apply(diff.stamp(diff.clean(want)), live)


def test_fields_added_by_others_are_not_drift():
    live = recorded("service-postgres-sales.json")
    live["metadata"]["labels"]["team"] = "sales"
    live["metadata"].setdefault("annotations", {})["note"] = "hand-added"
    assert not diff.needs_apply(desired("Service", "postgres-sales"), live)


def test_canonical_quantities_compare_equal():
    assert diff.is_subset({"resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}}},
                          {"resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}})
    assert not diff.is_subset({"limits": {"cpu": "0.5"}}, {"limits": {"cpu": "600m"}})
    assert not diff.is_subset({"image": "1"}, {"image": "1.0"})


def test_list_length_change_is_drift():
    assert not diff.is_subset({"ports": [{"port": 1}]}, {"ports": [{"port": 1}, {"port": 2}]})


def test_generated_secret_value_is_made_once_then_read_back():
    want = desired("Secret", "jupyterhub-credentials", "credentials")
    first = diff.fill_generated(want, None)
    token = first["data"]["proxy-auth-token"]
    assert len(base64.b64decode(token)) >= 24
    assert diff.fill_generated(want, None)["data"]["proxy-auth-token"] != token
    live = copy.deepcopy(first)
    again = diff.fill_generated(want, live)
    assert again["data"]["proxy-auth-token"] == token
    assert not diff.needs_apply(again, live)


def test_fingerprint_ignores_its_own_annotation_and_key_order():
    obj = rendered_for("docker-desktop")["namespaces"][0]
    reordered = json.loads(json.dumps(obj, sort_keys=True))
    assert diff.fingerprint(obj) == diff.fingerprint(reordered) == diff.fingerprint(diff.stamp(obj))


def test_plan_diff_hides_secret_values():
    want = desired("Secret", "postgres-sales-credentials", "credentials")
    live = copy.deepcopy(want)
    live["data"]["password"] = base64.b64encode(b"changed-by-hand").decode()
    lines = "\n".join(diff.unified(live, want, "Secret x"))
    assert "password: (hidden, sha256" in lines
    assert "YWRtaW4xMjM=" not in lines and "changed-by-hand" not in lines


def test_copied_secret_key_takes_the_value_generated_earlier_in_the_run():
    source = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "postgres-credentials", "namespace": "sales-domain",
              "annotations": {diff.GENERATED: "password"}}, "data": {"password": ""}}
    copy_ = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "trino-catalogs", "namespace": "data-platform",
             "annotations": {diff.COPIED: "sales-domain-password=sales-domain/postgres-credentials:password"}},
             "data": {"sales-domain-password": ""}}
    known: dict[str, str] = {}
    made = diff.fill_generated(source, None, known)["data"]["password"]
    assert diff.fill_generated(copy_, None, known)["data"]["sales-domain-password"] == made
    with pytest.raises(ValueError, match="copies sales-domain/postgres-credentials:password"):
        diff.fill_generated(copy_, None, {})
