"""The command line as a user meets it: clear one-sentence failures, non-zero exits, nothing applied."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from datamesh import ROOT

HANG_GUARD = 60  # seconds; a guard against a hung test, not a timing assertion


def invoke(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "invoke", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD,
                          env={**os.environ, **(env or {})})


class SilentServer:
    """A TCP port that accepts connections and never answers, counting them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def kubeconfig(tmp_path: Path, port: int, context: str = "lab") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True}}],
        "users": [{"name": context, "user": {"token": "unit-test"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }))
    return path


def inventory_file(tmp_path: Path, config: Path, extra: str = "") -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(f"cluster:\n  context: lab\n  kubeconfig: {config}\n  hint: start the lab cluster\n{extra}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_up_against_a_refusing_port_fails_with_one_sentence(tmp_path):
    port = free_port()
    result = invoke("up", "--inventory", str(inventory_file(tmp_path, kubeconfig(tmp_path, port))))
    assert result.returncode != 0
    assert f"cannot reach the Kubernetes API of context 'lab' at https://127.0.0.1:{port} (connection refused): start the lab cluster." in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_up_against_a_silent_server_gives_up_with_the_same_sentence(tmp_path, silent_server):
    config = kubeconfig(tmp_path, silent_server.port)
    result = invoke("up", "--inventory", str(inventory_file(tmp_path, config)))
    assert result.returncode != 0
    assert f"cannot reach the Kubernetes API of context 'lab' at https://127.0.0.1:{silent_server.port} (no answer" in result.stderr
    assert "Traceback" not in result.stderr


def test_misspelt_inventory_key_is_refused_before_the_cluster_is_contacted(tmp_path, silent_server):
    config = kubeconfig(tmp_path, silent_server.port)
    inv = inventory_file(tmp_path, config, "timeouts:\n  redy: 30\n")
    result = invoke("up", "--inventory", str(inv))
    assert result.returncode != 0
    assert "inv.yml line 6: unknown key 'timeouts.redy' (did you mean 'timeouts.ready'?)" in result.stderr
    assert silent_server.connections == []


def test_missing_context_names_the_kubeconfig_and_its_contexts(tmp_path):
    config = kubeconfig(tmp_path, free_port(), context="other")
    result = invoke("up", "--inventory", str(inventory_file(tmp_path, config)))
    assert result.returncode != 0
    assert f"kube context 'lab' is not in {config} (it has: other): start the lab cluster." in result.stderr


def test_dependency_left_out_is_refused(tmp_path):
    result = invoke("render", "--out", str(tmp_path / "out"), "--only", "postgres")
    assert result.returncode != 0
    assert "role postgres depends on namespaces, credentials" in result.stderr
    assert not (tmp_path / "out").exists()


def test_render_needs_no_cluster(tmp_path):
    result = invoke("render", "--out", str(tmp_path / "out"), env={"KUBECONFIG": str(tmp_path / "none")})
    assert result.returncode == 0, result.stderr
    from datamesh import playbook
    expected = [f"{index:02d}-{name}.yaml" for index, name in enumerate(playbook.load("up").names())]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == expected


def test_verify_against_a_refusing_port_fails_with_one_sentence_before_any_check(tmp_path):
    port = free_port()
    result = invoke("verify", "--inventory", str(inventory_file(tmp_path, kubeconfig(tmp_path, port))))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: cannot reach the Kubernetes API of context 'lab' at https://127.0.0.1:{port} "
                                     "(connection refused): start the lab cluster.")
    assert "checks:" not in result.stdout


@pytest.mark.parametrize("workers", ["many", "-1", "33"])
def test_verify_refuses_a_worker_count_that_is_not_0_to_32(workers):
    result = invoke("verify", "--workers", workers)
    assert result.returncode == 1
    assert f"error: --workers must be a whole number from 0 (one per CPU) to 32, not '{workers}'." in result.stderr


@pytest.mark.parametrize("task", ["up", "plan", "render", "status", "verify"])
def test_every_task_has_help(task):
    result = invoke(task, "--help")
    assert result.returncode == 0
    assert "--inventory" in result.stdout
    assert "Docstring:\n  none" not in result.stdout


def test_shell_completion_offers_task_and_flag_names():
    tasks = invoke("--complete", "--", "invoke").stdout.split()
    assert {"up", "doctor", "down", "seed", "verify", "status", "plan", "render", "testbed.up"} <= set(tasks)
    flags = invoke("--complete", "--", "invoke", "up", "--sk").stdout.split()
    assert {"--skip-doctor", "--selective", "--plain"} <= set(flags)
    assert {"--output", "--watch"} <= set(invoke("--complete", "--", "invoke", "status", "--").stdout.split())
    for shell in ("bash", "zsh", "fish"):
        script = invoke("--print-completion-script", shell)
        assert script.returncode == 0 and "--complete" in script.stdout, shell


def test_status_refuses_an_unknown_output_in_one_sentence():
    run = invoke("status", "--output", "yaml", env={"KUBECONFIG": "/nonexistent"})
    assert run.returncode == 1
    assert run.stderr.strip() == "error: --output must be table or json, not 'yaml'."


def test_doctor_without_a_kubeconfig_is_a_cross_naming_it_and_exits_2(tmp_path):
    run = invoke("doctor", "--report-json", str(tmp_path / "d.json"), env={"KUBECONFIG": str(tmp_path / "none")})
    assert run.returncode == 2
    assert run.stdout.startswith(f"✗ context: no kubeconfig at {tmp_path / 'none'}")
    assert '"ok": false' in (tmp_path / "d.json").read_text()
