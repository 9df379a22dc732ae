"""`invoke up` against a real control plane: converge, idempotency, drift, faults, budget.

Ordered: the first test starts from an empty cluster; later ones build on what it converged.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import time

import pytest

from datamesh import ROOT, budget, inventory as inventory_module, playbook
from tests.integration.conftest import get, wipe, write_inventory
from testbed import cluster as testbed

STATEFULSETS = [("data-platform", "postgres-sales"), ("data-platform", "postgres-marketing"),
                ("data-platform", "postgres-hive"), ("sales-domain", "postgres"), ("marketing-domain", "postgres")]


def assert_converged(kubectl) -> None:
    for namespace, name in STATEFULSETS:
        obj = get(kubectl, "statefulset", name, namespace)
        assert obj["status"].get("readyReplicas") == 1, f"{namespace}/{name}: {obj['status']}"
        pvc = get(kubectl, "pvc", f"data-{name}-0", namespace)
        assert pvc["status"]["phase"] == "Bound"


def test_up_on_an_empty_cluster_converges(empty_cluster, datamesh, kubectl):
    run = datamesh("up")
    assert run.returncode == 0, run.stderr + run.stdout
    assert run.totals["failed"] == 0 and run.totals["changed"] > 0
    assert "(created)" in run.stdout and "(updated)" not in run.stdout
    assert_converged(kubectl)
    generated = get(kubectl, "secret", "postgres-sales-credentials", "data-platform")
    assert len(base64.b64decode(generated["data"]["password"])) >= 24


def test_second_up_changes_nothing_and_writes_nothing(datamesh, audit):
    mark = audit.mark()
    run = datamesh("up")
    assert run.returncode == 0, run.stderr
    assert run.totals == {"ok": run.totals["ok"], "changed": 0, "failed": 0, "skipped": 0}
    assert run.totals["ok"] > 0
    assert audit.writes(mark) == []


def test_second_up_reads_one_list_per_kind_and_no_object_by_itself(datamesh):
    """Reading the state once: a LIST per kind rendered (and per kind the checks read), never a GET
    per object; discovery comes from the disk cache the first run filled."""
    run = datamesh("up")
    objects = run.totals["ok"]
    kinds = {(o["kind"]) for role in run.report["roles"] for o in role["objects"]}
    requests = dict(run.report["requests"])
    gets = requests.pop("GET")
    assert sum(requests.values()) == 1 and requests.keys() <= {"POST", "PUT"}  # taking the run's Lease
    # /version, the Lease, the nodes, all pods (the budget), the doctor's Services and the node's stats summary,
    # one LIST per kind rendered and NetworkPolicies, and the live checks' pods, volume claims, secrets,
    # namespaces and endpoint slices
    assert gets <= 4 + 2 + len(kinds) + 1 + 5 < objects


def test_generated_passwords_survive_reruns(datamesh, kubectl):
    first = get(kubectl, "secret", "postgres-hive-credentials", "data-platform")["data"]["password"]
    assert datamesh("up", "--only", "namespaces,credentials").returncode == 0
    assert get(kubectl, "secret", "postgres-hive-credentials", "data-platform")["data"]["password"] == first


def test_drift_is_planned_and_repaired_object_by_object(datamesh, kubectl, audit):
    kubectl("scale", "statefulset", "postgres-marketing", "-n", "data-platform", "--replicas=2")
    kubectl("patch", "configmap", "postgres-sales-init", "-n", "data-platform", "--type=merge",
            "-p", '{"data": {"01-schema.sql": "-- edited by hand"}}')
    plan = datamesh("plan")
    assert plan.returncode == 0, plan.stderr
    updates = [line for line in plan.stdout.splitlines() if line.startswith("~ update")]
    assert updates == ["~ update  [postgres] ConfigMap data-platform/postgres-sales-init",
                       "~ update  [postgres] StatefulSet data-platform/postgres-marketing"]
    assert "-  replicas: 2" in plan.stdout and "+  replicas: 1" in plan.stdout

    mark = audit.mark()
    run = datamesh("up")
    assert run.returncode == 0, run.stderr
    assert run.totals["changed"] == 2
    written = sorted(e["objectRef"]["resource"] + "/" + e["objectRef"]["name"] for e in audit.writes(mark))
    assert written == ["configmaps/postgres-sales-init", "statefulsets/postgres-marketing"]
    assert get(kubectl, "statefulset", "postgres-marketing", "data-platform")["spec"]["replicas"] == 1
    assert "CREATE TABLE customers" in get(kubectl, "configmap", "postgres-sales-init", "data-platform")["data"]["01-schema.sql"]


def test_workload_that_never_gets_ready_fails_with_pod_state_and_events(datamesh, kubectl, tmp_path):
    """A tainted node keeps the recreated pod Pending; the error says so; untainting fixes it."""
    node = testbed.NODE
    kubectl("taint", "node", node, "datamesh-test=blocked:NoSchedule")
    try:
        kubectl("delete", "pod", "postgres-sales-0", "-n", "data-platform", "--wait=true")
        inventory = write_inventory(tmp_path, {"timeouts": {"ready": 15}})
        run = datamesh("up", "--inventory", str(inventory))
        assert run.returncode != 0
        message = run.stderr
        assert "StatefulSet data-platform/postgres-sales was not ready after 15 s (0/1 ready" in message
        assert "pod postgres-sales-0 is Pending" in message
        assert "untolerated taint" in message and "FailedScheduling" in message
        assert run.totals["failed"] == 1
    finally:
        kubectl("taint", "node", node, "datamesh-test-")
    run = datamesh("up")
    assert run.returncode == 0, run.stderr
    assert_converged(kubectl)


def test_apiserver_restart_in_the_middle_of_up_is_ridden_out(datamesh, kubectl, env):
    kubectl("delete", "namespace", "marketing-domain", "--wait=true")
    process = subprocess.Popen([sys.executable, "-m", "invoke", "up"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    testbed.restart_apiserver()
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr + stdout
    assert_converged(kubectl)


@pytest.mark.parametrize("after", [0.8, 1.6, 3.0])
def test_up_killed_at_any_point_is_finished_by_the_next_up(after, datamesh, kubectl, env):
    wipe(kubectl)
    process = subprocess.Popen([sys.executable, "-m", "invoke", "up"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(after)
    process.send_signal(signal.SIGKILL)
    process.wait()
    run = datamesh("up")
    assert run.returncode == 0, run.stderr
    assert run.totals["failed"] == 0
    assert_converged(kubectl)
    workloads = json.loads(kubectl("get", "statefulsets,deployments,jobs", "-A", "-l", "app.kubernetes.io/part-of=datamesh", "-o", "json"))
    expected = sum(w["spec"].get("replicas", 1) for w in workloads["items"])
    pods = kubectl("get", "pods", "-A", "-l", "app.kubernetes.io/part-of=datamesh", "-o", "name").split()
    assert len(pods) == expected, pods  # one pod per replica: nothing made twice
    again = datamesh("up")
    assert again.totals["changed"] == 0


def test_too_small_a_cluster_is_refused_before_anything_is_applied(datamesh, audit, tmp_path):
    inventory = write_inventory(tmp_path, {"resources": {"postgres": {
        "requests": {"cpu": "100m", "memory": "2Gi"}, "limits": {"cpu": "500m", "memory": "2Gi"}}}})
    mark = audit.mark()
    run = datamesh("up", "--inventory", str(inventory))
    assert run.returncode != 0
    found = re.search(r"the platform requests ([\d.]+) CPU and ([\d.]+) GiB memory but the cluster's nodes have "
                      r"4 CPU and 8.0 GiB memory allocatable, of which other pods already request .*, so memory will not fit",
                      run.stderr)
    assert found, run.stderr
    rendered = playbook.render_all(playbook.load("up").roles, inventory_module.load(str(inventory)))
    want = budget.requested([obj for objects in rendered.values() for obj in objects])
    assert float(found.group(2)) == round(float(want["memory"] / 2**30), 1) > 8
    assert audit.writes(mark) == []


def test_objects_a_role_renders_no_more_are_planned_and_pruned(datamesh, kubectl, tmp_path, audit):
    """Trino workers scaled from 1 to 0 in the inventory: the worker Deployment and its NetworkPolicy go, nothing else."""
    workers = write_inventory(tmp_path, {"trino": {"workers": 1}})
    assert datamesh("up", "--inventory", str(workers)).returncode == 0
    assert get(kubectl, "deployment", "trino-worker", "data-platform")["spec"]["replicas"] == 1

    plan = datamesh("plan")
    assert "- delete  [trino] Deployment data-platform/trino-worker" in plan.stdout
    mark = audit.mark()
    run = datamesh("up")
    assert run.returncode == 0, run.stderr
    deleted = sorted((e["objectRef"]["resource"], e["objectRef"]["name"]) for e in audit.writes(mark) if e["verb"] == "delete")
    assert deleted == [("deployments", "trino-worker"), ("networkpolicies", "trino-worker")]  # the worker and its policy
    assert kubectl("get", "deployment", "trino-worker", "-n", "data-platform", "--ignore-not-found").strip() == ""
    assert datamesh("up").totals["changed"] == 0
