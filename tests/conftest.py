"""Fixtures every testbed tier shares: the cluster testbed, started once per session and built if
missing, and the real `invoke` command run against it (tests/integration, and tests/e2e for the
joined testbed).

A testbed that was already running (a developer's) is reused and left running; one this session
started is stopped at the end (DATAMESH_KEEP_TESTBED=1 keeps it). Tests count the tool's writes in
the apiserver's audit log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from datamesh import ROOT
from testbed import cluster as testbed

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
HANG_GUARD = 900  # seconds; a guard against a hung run, not a timing assertion


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    report: dict | None

    @property
    def totals(self) -> dict:
        return (self.report or {}).get("totals", {})


class Audit:
    """The apiserver's audit log: which write requests a user agent made since a mark."""

    def __init__(self, path: Path):
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def events(self, since: int) -> list[dict]:
        with self.path.open() as handle:
            handle.seek(since)
            return [json.loads(line) for line in handle if line.strip()]

    def writes(self, since: int, agent: str = "datamesh/") -> list[dict]:
        """Completed write requests by `agent`, dry runs excluded (they change nothing)."""
        deadline = time.monotonic() + 2  # the audit backend flushes asynchronously
        while True:
            found = [
                e for e in self.events(since)
                if e.get("stage") == "ResponseComplete" and e.get("verb") in WRITE_VERBS
                and (e.get("userAgent") or "").startswith(agent) and "dryRun=All" not in e.get("requestURI", "")
            ]
            if time.monotonic() > deadline:
                return found
            time.sleep(0.5)


@pytest.fixture(scope="session")
def cluster_testbed():
    started_here = not (testbed.is_up() and testbed.node_ready())
    kubeconfig = testbed.up()
    yield kubeconfig
    if started_here and not os.environ.get("DATAMESH_KEEP_TESTBED"):
        testbed.down()


@pytest.fixture(scope="session")
def env(cluster_testbed) -> dict:
    """The user's environment on the testbed: its kubeconfig and inventory, and its kubectl first on PATH
    (the in-cluster checks of `invoke verify` run `kubectl exec`)."""
    path = os.pathsep.join([str(testbed.kubectl_path().parent), os.environ.get("PATH", "")])
    return {**os.environ, "KUBECONFIG": str(cluster_testbed), "DATAMESH_INVENTORY": "testbed", "PATH": path}


@pytest.fixture(scope="session")
def audit(cluster_testbed) -> Audit:
    return Audit(testbed.audit_log_path())


@pytest.fixture(scope="session")
def datamesh(env, tmp_path_factory):
    """Run `invoke <task> ...` as a user would; `up`, `down` and `seed` also return their JSON report."""
    def run(task: str, *args: str, extra_env: dict | None = None, timeout: int = HANG_GUARD) -> Run:
        report_path = tmp_path_factory.mktemp("report") / "report.json"
        command = [sys.executable, "-m", "invoke", task, *args]
        if task in ("up", "down", "seed"):
            command += ["--report-json", str(report_path)]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                env={**env, **(extra_env or {})})
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        return Run(result.returncode, result.stdout, result.stderr, report)
    return run


@pytest.fixture(scope="session")
def kubectl(env):
    """The testbed's own kubectl, for changes made behind the tool's back."""
    def run(*args: str, input: str | None = None, check: bool = True) -> str:
        result = subprocess.run([str(testbed.kubectl_path()), *args], capture_output=True, text=True,
                                input=input, env=env, timeout=120)
        if check and result.returncode:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result.stdout
    return run
