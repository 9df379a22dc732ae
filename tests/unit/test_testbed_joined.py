"""The joined testbed without a cluster: the KWOK objects computed for the pods the roles render
(testbed/links.py desired) and the CRI log copies (testbed/crilogs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testbed import crilogs, joined, links
from testbed.rendered import config_from_render
from tests.unit.helpers import all_objects, rendered_for

NAMESPACES = ["jupyterhub", "data-platform", "sales-domain", "marketing-domain"]
PROCESSES = ["postgres-sales", "postgres-marketing", "postgres-hive", "postgres-sales-domain",
             "postgres-marketing-domain", "s3", "hive-metastore", "trino", "hub", "proxy", "nginx", "forward"]
LOGS = Path("/cluster/joined/logs")
NO_PID = 2**23  # above any pid_max: no /proc entry, so the folder comes from the log's path


def pod_of(workload: dict) -> dict:
    """The pod a controller would make from a rendered workload."""
    meta, template = workload["metadata"], workload["spec"]["template"]
    suffix = {"StatefulSet": "-0", "Deployment": "-5d8f7c9b4-x2x7q", "Job": "-k8x2p"}[workload["kind"]]
    labels = dict(template["metadata"].get("labels") or {})
    owners = []
    if workload["kind"] == "Job":
        labels["job-name"] = meta["name"]
        owners = [{"kind": "Job", "name": meta["name"]}]
    return {"metadata": {"name": meta["name"] + suffix, "namespace": meta["namespace"], "uid": f"uid-{meta['name']}",
                         "labels": labels, "ownerReferences": owners},
            "spec": template["spec"]}


@pytest.fixture(scope="module")
def cluster_objects() -> tuple[list[dict], list[dict]]:
    objects = all_objects(rendered_for("testbed"))
    pods = [pod_of(o) for o in objects if o["kind"] in ("StatefulSet", "Deployment", "Job")]
    return pods, [o for o in objects if o["kind"] == "Service"]


@pytest.fixture(scope="module")
def state() -> dict:
    entries = {name: {"pid": NO_PID, "log": f"/run/{name}/{name}.log"} for name in PROCESSES}
    return {"namespaces": NAMESPACES, "processes": joined.processes(config_from_render("docker-desktop"), entries),
            "repo": "/repo"}


@pytest.fixture(scope="module")
def computed(cluster_objects, state) -> tuple[dict, dict]:
    pods, services = cluster_objects
    objects, files = links.desired(pods, services, state, LOGS)
    return {links._key(o): o for o in objects}, files


def spec(computed, kind: str, namespace: str, prefix: str) -> dict:
    found = [o for (k, ns, name), o in computed[0].items() if k == kind and ns == namespace and name.startswith(prefix)]
    assert len(found) == 1, f"{kind} {namespace}/{prefix}*: {len(found)} found"
    return found[0]["spec"]


def forwards(computed, namespace: str, prefix: str) -> dict[int, tuple[str, int]]:
    return {f["ports"][0]: (f["target"]["address"], f["target"]["port"])
            for f in spec(computed, "PortForward", namespace, prefix)["forwards"]}


@pytest.mark.parametrize("namespace, pod, expected", [
    ("data-platform", "postgres-sales-0", {5432: ("127.42.1.1", 5432)}),
    ("data-platform", "postgres-hive-0", {5432: ("127.42.1.3", 5432)}),
    ("sales-domain", "postgres-0", {5432: ("127.42.1.4", 5432)}),
    ("marketing-domain", "postgres-0", {5432: ("127.42.1.5", 5432)}),
    ("data-platform", "minio-0", {9000: ("127.42.1.10", 9000), 9001: ("127.42.1.10", 9001)}),
    ("data-platform", "hive-metastore-", {9083: ("127.42.1.11", 9083)}),
    ("data-platform", "trino-coordinator-", {8080: ("127.42.1.12", 8080), 8443: ("127.42.1.12", 8443)}),
    ("jupyterhub", "hub-", {8081: ("127.42.1.20", 8081)}),
    ("jupyterhub", "proxy-", {8000: ("127.42.1.22", 8000), 8001: ("127.42.1.21", 8001)}),
    ("data-platform", "dbt-docs-", {8080: ("127.42.1.30", 8080)}),
])
def test_each_container_port_a_service_targets_goes_to_the_program_of_that_service(computed, namespace, pod, expected):
    assert forwards(computed, namespace, pod) == expected


def test_logs_and_exec_of_a_pod_are_its_programs(computed, state):
    logs = spec(computed, "Logs", "data-platform", "trino-coordinator-")["logs"]
    assert logs == [{"logsFile": str(LOGS / "trino.log"), "follow": True}]
    assert computed[1][LOGS / "trino.log"] == ("copy", "/run/trino/trino.log")
    local = spec(computed, "Exec", "data-platform", "trino-coordinator-")["execs"][0]["local"]
    assert local["workDir"] == state["processes"]["trino"]["workdir"] == "/run/trino"
    assert {"name": "HOSTNAME", "value": "trino-coordinator-5d8f7c9b4-x2x7q"} in local["envs"]


def test_pods_the_testbed_does_not_run_get_a_log_line_saying_so_and_no_port_forward(computed):
    keys = computed[0]
    assert not [k for k in keys if k[0] == "PortForward" and k[2].startswith(("grafana-", "minio-buckets-"))]
    notes = {path.name: text for path, (kind, text) in computed[1].items() if kind == "note"}
    grafana = next(text for name, text in notes.items() if name.startswith("data-platform.grafana-"))
    assert "does not run grafana" in grafana and "AGPL" in grafana
    job = next(text for name, text in notes.items() if name.startswith("data-platform.minio-buckets-"))
    assert "Job" in job and "minio-buckets-" in job
    assert spec(computed, "Exec", "data-platform", "grafana-")["execs"][0]["local"]["workDir"] == "/repo"


def test_every_pod_gets_its_three_objects_named_like_it_and_never_labelled_part_of_datamesh(cluster_objects, computed):
    pods, _ = cluster_objects
    keys = set(computed[0])
    for pod in pods:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        assert {("Logs", ns, name), ("Exec", ns, name)} <= keys
    for obj in computed[0].values():
        labels = obj["metadata"]["labels"]
        assert labels == {"app.kubernetes.io/managed-by": "datamesh-testbed"}
        assert obj["apiVersion"] == "kwok.x-k8s.io/v1alpha1"
        assert obj["metadata"]["annotations"][links.POD_UID].startswith("uid-")


def test_pods_outside_the_namespaces_or_not_the_platforms_are_left_alone(cluster_objects, state):
    pods, services = cluster_objects
    stranger = {"metadata": {"name": "x", "namespace": "data-platform", "labels": {}}, "spec": {"containers": []}}
    elsewhere = {**pods[0], "metadata": {**pods[0]["metadata"], "namespace": "default"}}
    assert links.desired([stranger, elsewhere], services, state, LOGS) == ([], {})


def test_a_changed_pod_uid_or_spec_counts_as_a_difference(computed):
    want = next(iter(computed[0].values()))
    live = {**want, "metadata": {**want["metadata"], "resourceVersion": "7", "labels": {**want["metadata"]["labels"], "x": "y"}}}
    assert links.missing({"k": want}, {"k": live}) == []
    moved = {**live, "metadata": {**live["metadata"], "annotations": {links.POD_UID: "another"}}}
    assert links.missing({"k": want}, {"k": moved}) == [links.ref(want)]
    assert links.missing({"k": want}, {}) == [links.ref(want)]


# -- CRI log lines ------------------------------------------------------------------------------

def test_cri_time_is_rfc3339_with_nanoseconds_in_utc():
    assert crilogs.cri_time(0.5) == "1970-01-01T00:00:00.500000000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", crilogs.cri_time(1_790_000_000.123))


def test_complete_lines_become_cri_records_and_a_partial_last_line_waits():
    out, used = crilogs.cri_lines(b"one\ntwo words\nthr", "T")
    assert out == b"T stdout F one\nT stdout F two words\n"
    assert used == len(b"one\ntwo words\n")
    assert crilogs.cri_lines(b"partial", "T") == (b"", 0)
    assert crilogs.cri_lines(b"\n", "T") == (b"T stdout F \n", 1)


def test_a_line_longer_than_max_pending_goes_as_a_partial_record():
    data = b"x" * crilogs.MAX_PENDING
    assert crilogs.cri_lines(data, "T") == (b"T stdout P " + data + b"\n", len(data))


def test_sync_copies_new_lines_from_the_last_run_and_keeps_its_offset(tmp_path):
    source = tmp_path / "trino.log"
    source.write_bytes(b"old run\n\n==== 2026-11-30T03:00:00 launcher run\nstarted\nhal")
    root = tmp_path / "joined" / "logs"
    copy, note = root / "trino.log", root / "notes" / "data-platform.grafana-1.log"
    files = {copy: ("copy", str(source)), note: ("note", "the service testbed does not run grafana")}
    crilogs.sync(files, root)
    lines = copy.read_bytes().decode().splitlines()
    assert [line.split(" ", 3)[1:] for line in lines] == [
        ["stdout", "F", "==== 2026-11-30T03:00:00 launcher run"], ["stdout", "F", "started"]]
    with open(source, "ab") as fh:
        fh.write(b"f done\n")
    crilogs.sync(files, root)
    crilogs.sync(files, root)
    assert copy.read_bytes().decode().splitlines()[2].endswith(" stdout F half done")
    assert len(copy.read_bytes().splitlines()) == 3
    assert note.read_bytes().decode().endswith(" stdout F the service testbed does not run grafana\n")
    crilogs.sync({copy: files[copy]}, root)
    assert not note.exists()
