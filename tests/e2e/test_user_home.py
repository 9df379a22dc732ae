"""A user's first login to JupyterHub, after `invoke seed` on the joined testbed: the hub (the role's
config, the testbed's local spawner running the config's init container) fills the home with the
starter files, a re-spawn keeps the user's edits, and in the server's own environment the dbt
project builds as written and the three notebooks run top to bottom."""

from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from datamesh import dbt, probes
from testbed.jupyterhub import install
from testbed.processes import run_dir

USER = "admin"
HUB = "http://127.0.0.1:30080"
NOTEBOOKS = ["01_explore_data.ipynb", "02_trino_queries.ipynb", "03_analysis.ipynb"]
STARTERS = ["dbt_projects/dbt_project.yml", "dbt_projects/profiles.yml", "scripts/utils.py",
            *(f"notebooks/{name}" for name in NOTEBOOKS)]


@pytest.fixture(scope="module")
def seeded(joined, datamesh):
    run = datamesh("seed", "--inventory", "testbed", "--scale", "0.2", "--reset", "--yes")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


class Hub:
    """The hub's REST API as the logged-in admin's browser uses it (session cookie and _xsrf)."""

    def __init__(self, jar: http.cookiejar.CookieJar):
        self.jar = jar

    def call(self, method: str, path: str) -> dict:
        status, body = probes.hub_api(HUB, self.jar, path, method, timeout=60)
        assert status < 400, f"{method} /hub/api{path} answered HTTP {status}: {body[:300]!r}"
        return json.loads(body) if body else {}

    def server(self) -> dict | None:
        return self.call("GET", f"/users/{USER}").get("servers", {}).get("")

    def wait(self, ready: bool, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            server = self.server()
            if (server is not None and server.get("ready")) == ready and (ready or server is None):
                return
            time.sleep(1)
        pytest.fail(f"{USER}'s server did not {'start' if ready else 'stop'} within {seconds:.0f}s")

    def start(self) -> None:
        if self.server() is None:
            self.call("POST", f"/users/{USER}/server")
        self.wait(ready=True)

    def stop(self) -> None:
        if self.server() is not None:
            self.call("DELETE", f"/users/{USER}/server")
        self.wait(ready=False)


@pytest.fixture(scope="module")
def hub(joined) -> Hub:
    return Hub(probes.hub_login(HUB, USER, "admin"))


@pytest.fixture(scope="module")
def home(hub) -> Path:
    """The admin's home after a first login: stopped, emptied, then spawned."""
    hub.stop()
    folder = run_dir() / "jupyterhub" / "home" / USER
    shutil.rmtree(folder, ignore_errors=True)
    hub.start()
    return folder


def server_env() -> dict[str, str]:
    """The environment of the admin's running single-user server, as its kernels inherit it."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
        if b"jupyterhub.singleuser" in cmdline and env.get("JUPYTERHUB_USER") == USER:
            return env
    pytest.fail(f"no running single-user server of {USER}")


def test_first_login_puts_the_starter_files_in_the_home(home):
    for path in STARTERS + ["data/uploads", "data/exports"]:
        assert (home / path).exists(), path
    assert (home / "dbt_projects" / "dbt_project.yml").read_text() == (dbt.PROJECT / "dbt_project.yml").read_text()
    assert not (home / "dbt_projects" / "target").exists()


def test_the_server_environment_carries_the_connections_and_the_logins(home, config):
    env = server_env()
    assert env["TRINO_HOST"] == "trino-coordinator.data-platform.svc.cluster.local" and env["TRINO_PORT"] == "8443"
    assert (env["TRINO_USER"], env["TRINO_PASSWORD"]) == ("admin", config["secrets"]["data-platform/trino-users"]["admin-password"])
    assert Path(env["TRINO_CA"]).read_text() == config["secrets"]["data-platform/trino-tls"]["ca.crt"]
    assert not [name for name in env if name.startswith("POSTGRES_")], "servers hold no database login"
    assert env["MINIO_ACCESS_KEY"] == config["s3"]["access_key"] and env["MINIO_BUCKET"] == "datalake"


def test_a_users_edit_survives_a_respawn(home, hub):
    profile = home / "dbt_projects" / "profiles.yml"
    edited = profile.read_text() + "\n# my own note\n"
    profile.write_text(edited)
    (home / "notebooks" / "mine.ipynb").write_text("{}")
    hub.stop()
    hub.start()
    assert profile.read_text() == edited
    assert (home / "notebooks" / "mine.ipynb").read_text() == "{}"


def run_in_server(home: Path, args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    python = str(install() / "venv" / "bin" / "python")  # the user image's Python environment
    return subprocess.run([python, *args], cwd=cwd, env=server_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_dbt_builds_from_the_home_as_written(home, seeded):
    done = run_in_server(home, ["-c", dbt.RUNNER, "build", "--profiles-dir", "."], home / "dbt_projects", 900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "ERROR=0" in done.stdout and "WARN=0" in done.stdout, done.stdout[-2000:]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_each_notebook_runs_top_to_bottom(home, seeded, notebook, tmp_path):
    done = run_in_server(home, ["-m", "nbconvert", "--to", "notebook", "--execute",
                                "--ExecutePreprocessor.timeout=600", "--output-dir", str(tmp_path), notebook],
                         home / "notebooks", 900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    ran = json.loads((tmp_path / notebook).read_text())
    errors = [o for cell in ran["cells"] for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert all(cell.get("execution_count") for cell in ran["cells"] if cell["cell_type"] == "code")
    if notebook == "03_analysis.ipynb":
        assert any((home / "data" / "exports").iterdir())
