"""The terminal experience on the cluster testbed: `invoke doctor` before `up`, `status --output json`,
the diagnostics bundle of a failing `up`, and the `down --selective` checklist driven through tmux."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datamesh import ROOT, playbook
from testbed import cluster as testbed
from testbed.common import apt_install
from tests.integration.conftest import get, write_inventory


def converged(datamesh) -> None:
    run = datamesh("up")
    assert run.returncode == 0, run.stderr + run.stdout


def doctor_lines(stdout: str) -> dict[str, str]:
    return {line.split(":")[0][2:]: line for line in stdout.splitlines() if line[:1] in "✓⚠✗–"}


@contextlib.contextmanager
def node_allocatable(kubectl, **amounts: str):
    """The fake node's allocatable changed for a while (KWOK keeps what the status says)."""
    node = testbed.NODE
    before = get(kubectl, "node", node)["status"]["allocatable"]
    kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p",
            json.dumps({"status": {"allocatable": amounts}}))
    try:
        yield
    finally:
        kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p",
                json.dumps({"status": {"allocatable": {k: before[k] for k in amounts}}}))


def test_doctor_on_a_roomy_testbed_ticks_every_check(datamesh, kubectl):
    """The testbed's node is sized like Docker Desktop's default VM (8 GiB), where the limits are a ⚠
    as the README says; given the 10 CPU and 12 GiB the README recommends, every check is a ✓."""
    converged(datamesh)
    assert doctor_lines(datamesh("doctor").stdout)["resources"].startswith("⚠ resources: the platform's limits add up")
    with node_allocatable(kubectl, cpu="10", memory="12Gi"):
        run = datamesh("doctor", "--report-json", str(ROOT / ".pytest_cache" / "doctor.json"))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = doctor_lines(run.stdout)
    assert list(lines) == ["context", "api", "resources", "architectures", "nodeports", "disk"]
    assert all(line.startswith("✓") for line in lines.values()), run.stdout
    assert "kube context kwok-datamesh" in lines["context"]
    assert lines["nodeports"] == "✓ nodeports: 30080–30084: all held by the platform's own Services"
    assert re.fullmatch(r"✓ disk: the volumes request [\d.]+ GiB; datamesh-node: 60.0 GiB allocatable, usage not reported",
                        lines["disk"])
    report = json.loads((ROOT / ".pytest_cache" / "doctor.json").read_text())
    assert report["ok"] is True and [c["check"] for c in report["checks"]] == list(lines)


def free_nodeport() -> int:
    for port in range(32700, 30100, -1):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)):
                return port
    raise AssertionError("no free port in the NodePort range")


def test_doctor_names_the_program_listening_on_a_nodeport_and_up_applies_nothing(datamesh, audit, tmp_path):
    port = free_nodeport()
    inventory = write_inventory(tmp_path, {"nodeports": {"grafana": port}})
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while socket.socket().connect_ex(("127.0.0.1", port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        run = datamesh("doctor", "--inventory", str(inventory))
        assert run.returncode == 2, run.stdout + run.stderr
        line = doctor_lines(run.stdout)["nodeports"]
        assert line.startswith("✗ nodeports: ")
        assert f"port {port} (nodeports.grafana) on localhost is taken by python" in line
        assert f"pid {server.pid}: " in line and f"-m http.server {port}" in line
        mark = audit.mark()
        refused = datamesh("up", "--inventory", str(inventory))
        assert refused.returncode == 1
        assert "the doctor found 1 problem(s) and nothing was applied; first, nodeports: port" in refused.stderr
        assert audit.writes(mark) == []
    finally:
        server.kill()
        server.wait()


def test_doctor_gives_the_numbers_when_the_node_is_too_small(datamesh, kubectl):
    with node_allocatable(kubectl, memory="1Gi"):
        run = datamesh("doctor")
        assert run.returncode == 2
        line = doctor_lines(run.stdout)["resources"]
        assert line.startswith("✗ resources: the platform requests ")
        assert "but the cluster's nodes have 4 CPU and 1.0 GiB memory allocatable" in line
        assert "memory will not fit" in line


def test_status_json_parses_and_lists_every_component(datamesh):
    converged(datamesh)
    run = datamesh("status", "--output", "json")
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert [c["name"] for c in found["components"]] == playbook.load("up").names()
    assert found["healthy"] is True and all(c["healthy"] for c in found["components"])
    assert {e["name"] for e in found["endpoints"]} == {"jupyterhub", "trino", "minio-console", "grafana", "dbt-docs"}
    assert "cluster: context kwok-datamesh" in run.stderr


def test_status_exits_3_and_says_which_object_when_one_is_missing(datamesh, kubectl):
    kubectl("delete", "service", "dbt-docs", "-n", "data-platform", "--wait=true")
    try:
        run = datamesh("status", "--output", "json")
        assert run.returncode == 3
        found = json.loads(run.stdout)
        docs = next(c for c in found["components"] if c["name"] == "dbt-docs")
        assert docs["healthy"] is False
        assert {"object": "Service data-platform/dbt-docs", "state": "missing", "ready": False} in docs["objects"]
    finally:
        converged(datamesh)


def cri_log(path: Path, *lines: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
    path.write_text("".join(f"{stamp} stdout F {line}\n" for line in lines))


def test_a_failing_up_writes_the_diagnostics_bundle_and_prints_its_path_last(datamesh, kubectl, tmp_path):
    """A tainted node keeps postgres-sales-0 Pending until the wait times out; the bundle holds its
    events, the log lines KWOK serves for a running sibling, the rendered objects and the recap."""
    converged(datamesh)
    log = tmp_path / "postgres-marketing.log"
    cri_log(log, "LOG:  database system is ready to accept connections", "the last line of the log")
    logs = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
            "metadata": {"name": "postgres-marketing-0", "namespace": "data-platform"},
            "spec": {"logs": [{"containers": ["postgres"], "logsFile": str(log)}]}}
    kubectl("apply", "-f", "-", input=json.dumps(logs))
    kubectl("taint", "node", testbed.NODE, "datamesh-test=blocked:NoSchedule")
    try:
        kubectl("delete", "pod", "postgres-sales-0", "-n", "data-platform", "--wait=true")
        run = datamesh("up", "--inventory", str(write_inventory(tmp_path, {"timeouts": {"ready": 15}})))
        assert run.returncode == 2
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith("diagnostics: .datamesh/diagnostics/"), run.stderr
        bundle = ROOT / last.split(": ", 1)[1]
        pods = bundle / "pods"
        assert "FailedScheduling" in (pods / "data-platform.postgres-sales-0.events.txt").read_text()
        assert "the last line of the log" in (pods / "data-platform.postgres-marketing-0.postgres.log").read_text()
        summary = (bundle / "summary.txt").read_text()
        assert summary.startswith("postgres failed: StatefulSet data-platform/postgres-sales was not ready after 15 s")
        assert "data-platform.postgres-sales-0: Pending (unschedulable: " in summary
        assert "kind: StatefulSet" in (bundle / "rendered" / "02-postgres.yaml").read_text()
        recap = json.loads((bundle / "recap.json").read_text())
        assert [r["name"] for r in recap["results"] if r["error"]] == ["postgres"]
    finally:
        kubectl("taint", "node", testbed.NODE, "datamesh-test-")
        kubectl("delete", "logs.kwok.x-k8s.io", "postgres-marketing-0", "-n", "data-platform", "--ignore-not-found")
    converged(datamesh)


# -- the checklist in a real terminal --------------------------------------------------------------


@pytest.fixture(scope="module")
def tmux():
    if shutil.which("tmux") is None:
        apt_install("tmux")
    return shutil.which("tmux")


class Pane:
    """A tmux session running one command: keys in, the screen out."""

    def __init__(self, tmux: str, command: str, env: dict):
        self.tmux, self.name = tmux, f"datamesh-{time.monotonic_ns()}"
        subprocess.run([tmux, "new-session", "-d", "-s", self.name, "-x", "200", "-y", "60", command],
                       check=True, env=env)

    def keys(self, *keys: str) -> None:
        subprocess.run([self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run([self.tmux, "capture-pane", "-p", "-S", "-200", "-t", self.name],
                              capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run([self.tmux, "kill-session", "-t", self.name], capture_output=True)


def exists(kubectl, kind: str, name: str) -> bool:
    return bool(kubectl("get", kind, name, "-n", "data-platform", "--ignore-not-found", "-o", "name").strip())


@pytest.mark.parametrize("answer, flags", [("n", "--plain"), ("y", "")])
def test_down_selective_in_a_terminal_ticks_two_components_shows_the_plan_and_asks(answer, flags, tmux, datamesh,
                                                                                     kubectl, env, tmp_path):
    """Declined, nothing goes; accepted, exactly the two ticked go, with the live rows (no --plain)."""
    converged(datamesh)
    done = tmp_path / "exit-code"
    pane = Pane(tmux, f"cd {ROOT} && {sys.executable} -m invoke down --selective {flags}; echo $? > {done}; sleep 600", env)
    try:
        pane.wait_for("Components to remove")
        pane.keys(*["Down"] * 7, "Space", "Down", "Space")  # grafana, then dbt-docs (playbook order)
        screen = pane.wait_for("● dbt-docs")
        assert "● grafana" in screen and screen.count("●") == 2
        pane.keys("Enter")
        screen = pane.wait_for("Delete what is marked '-' above from dbt-docs, grafana?")
        assert "- will delete  [grafana] Deployment data-platform/grafana" in screen
        assert "= keep         [dbt-docs] PersistentVolumeClaim data-platform/dbt-docs-site (data volume" in screen
        pane.keys(answer, "Enter")
        deadline = time.monotonic() + 300
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        screen = pane.screen()
    finally:
        pane.close()
    assert done.read_text().strip() == "0", screen
    if answer == "n":
        assert "not confirmed; nothing removed." in screen
        assert exists(kubectl, "deployment", "grafana") and exists(kubectl, "deployment", "dbt-docs")
    else:
        assert not exists(kubectl, "deployment", "grafana") and not exists(kubectl, "deployment", "dbt-docs")
        assert exists(kubectl, "persistentvolumeclaim", "dbt-docs-site")
        assert exists(kubectl, "deployment", "trino-coordinator") and exists(kubectl, "statefulset", "postgres-sales")
        rows = [line.split() for line in screen.splitlines() if line.split()[:1] in (["grafana"], ["dbt-docs"])]
        assert ["dbt-docs", "done"] in [row[:2] for row in rows] and ["grafana", "done"] in [row[:2] for row in rows]
        converged(datamesh)


def run_in_pane(tmux, env, tmp_path, command: str) -> tuple[Pane, Path]:
    done = tmp_path / "exit-code"
    return Pane(tmux, f"cd {ROOT} && {sys.executable} -m invoke {command}; echo $? > {done}; sleep 600", env), done


def finished(done: Path, pane: Pane, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert done.exists(), pane.screen()
    return done.read_text().strip()


def test_up_selective_adds_what_the_ticked_component_needs_and_says_so(tmux, datamesh, env, tmp_path):
    converged(datamesh)
    pane, done = run_in_pane(tmux, env, tmp_path, "up --selective --plain")
    try:
        pane.wait_for("Components to bring up")
        pane.keys(*["Down"] * 7, "Space")  # grafana
        pane.wait_for("● grafana")
        pane.keys("Enter")
        assert finished(done, pane) == "0"
        screen = pane.screen()
    finally:
        pane.close()
    assert "grafana needs namespaces, credentials: added." in screen
    assert "| roles: namespaces, credentials, grafana" in screen
    assert "ENDPOINTS" in screen and "http://localhost:30083" in screen


def test_status_watch_redraws_until_ctrl_c_and_exits_by_the_last_health(tmux, datamesh, env, tmp_path):
    converged(datamesh)
    pane, done = run_in_pane(tmux, env, tmp_path, "status --watch 1")
    try:
        pane.wait_for("every 1s, Ctrl-C to stop")
        first = pane.screen()
        deadline = time.monotonic() + 30
        while pane.screen() == first:  # the clock in the first line moves on each redraw
            assert time.monotonic() < deadline, first
            time.sleep(0.2)
        pane.keys("C-c")
        assert finished(done, pane, timeout=30) == "0"
        screen = pane.screen()
    finally:
        pane.close()
    assert "endpoints (NodePorts on localhost)" in screen and "ready" in screen
