"""Readiness predicates, on objects recorded from kube-apiserver and KWOK (see fixtures/record.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from datamesh import wait

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_statefulset_ready_once_its_pod_is_ready():
    assert wait.statefulset_ready(recorded("statefulset-postgres-sales.json")) == (True, "1/1 ready")


def test_statefulset_just_applied_is_not_ready():
    ready, why = wait.statefulset_ready(recorded("statefulset-just-applied.json"))
    assert not ready and why in ("controller has not seen the latest spec", "0/1 ready, 0/1 updated")


def test_statefulset_with_a_newer_generation_than_observed_is_not_ready():
    obj = recorded("statefulset-postgres-sales.json")
    obj["metadata"]["generation"] += 1
    assert wait.statefulset_ready(obj) == (False, "controller has not seen the latest spec")


def test_statefulset_mid_rollout_is_not_ready():
    obj = recorded("statefulset-postgres-sales.json")
    obj["status"]["updateRevision"] = obj["status"]["currentRevision"] + "-next"
    assert wait.statefulset_ready(obj) == (False, "rolling update in progress")


def test_deployment_ready_and_not_ready():
    assert wait.deployment_ready(recorded("deployment-ready.json"))[0]
    stale = recorded("deployment-ready.json")
    stale["metadata"]["generation"] += 1
    assert wait.deployment_ready(stale) == (False, "controller has not seen the latest spec")
    assert not wait.deployment_ready(recorded("deployment-just-applied.json"))[0]


def test_deployment_with_surplus_old_replicas_is_not_ready():
    obj = recorded("deployment-ready.json")
    obj["status"]["replicas"] = obj["spec"]["replicas"] + 1
    assert not wait.deployment_ready(obj)[0]


def test_job_complete_and_running():
    assert wait.job_complete(recorded("job-complete.json")) == (True, "complete")
    assert not wait.job_complete(recorded("job-just-applied.json"))[0]


def test_failed_job_stops_the_wait_at_once():
    job = recorded("job-complete.json")
    job["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                    "message": "Job has reached the specified backoff limit"}]
    with pytest.raises(wait.JobFailed, match="BackoffLimitExceeded"):
        wait.job_complete(job)


def test_pvc_bound_and_pending():
    assert wait.pvc_bound(recorded("pvc-bound.json")) == (True, "bound")
    pending = copy.deepcopy(recorded("pvc-bound.json"))
    pending["status"] = {"phase": "Pending"}
    assert wait.pvc_bound(pending) == (False, "pending")


def test_service_ready_with_a_ready_endpoint():
    assert wait.endpoints_ready([recorded("endpointslice-postgres-sales.json")]) == (True, "1 ready endpoint")
    assert wait.endpoints_ready([]) == (False, "0 ready endpoints")
    unready = recorded("endpointslice-postgres-sales.json")
    for endpoint in unready["endpoints"]:
        endpoint["conditions"]["ready"] = False
    assert wait.endpoints_ready([unready]) == (False, "0 ready endpoints")


def test_every_predicate_kind_is_in_the_table():
    assert set(wait.PREDICATES) == {"StatefulSet", "Deployment", "Job", "PersistentVolumeClaim", "Namespace"}
