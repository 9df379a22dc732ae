"""datamesh/images.py and the user image it builds: files/images/jupyterhub-dbt."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from datamesh import ROOT, images, inventory
from datamesh.errors import DatameshError


IMAGE = ROOT / "files/images/jupyterhub-dbt"


def test_user_image_is_pinned_and_brings_the_tools():
    dockerfile = (IMAGE / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)$", dockerfile, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base)
    server = inventory.load("docker-desktop")["images"]["trino"].rpartition(":")[2]
    assert re.search(rf"^ARG TRINO_VERSION={server}$", dockerfile, re.M), "the CLI matches the server's release"
    assert "sha1sum -c" in dockerfile  # the Trino CLI against Maven Central's checksum
    assert "dl.min.io" not in dockerfile and "mc --version" not in dockerfile  # MinIO's download site answers 410
    assert re.search(r"&& aws --version", dockerfile)  # the S3 command line, from PyPI (requirements.txt)
    assert re.search(r"^USER 1000$", dockerfile, re.M) and 'CMD ["jupyterhub-singleuser"]' in dockerfile
    assert "latest" not in dockerfile
    requirements = [l for l in (IMAGE / "requirements.txt").read_text().splitlines() if l and not l.startswith("#")]
    pins = dict(l.split("==") for l in requirements)
    assert len(pins) == len(requirements)
    assert {"jupyterlab", "dbt-core", "dbt-trino", "jupyterlab-git", "jupyter-scheduler", "trino", "minio",
            "awscli"} <= set(pins)
    assert pins["jupyterhub"] == "4.1.6"  # what quay.io/jupyterhub/k8s-hub:3.3.8 runs
    locked = [l for l in (IMAGE / "constraints.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert all(re.fullmatch(r"[\w.-]+==[\w.+-]+", l) for l in locked)
    lock = {name.lower().replace("_", "-"): v for name, v in (l.split("==") for l in locked)}
    for name, version in pins.items():
        assert lock[name] == version, name
    tool = dict(l.split("#")[0].strip().split("==") for l in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in l and not l.startswith("#"))
    for name in ("dbt-core", "dbt-trino", "trino", "pyarrow"):  # users build the products as `invoke seed` does
        assert pins[name] == tool[name], name


class Runs:
    """Records commands; `docker info` answers as told, every other command succeeds."""

    def __init__(self, engine: bool):
        self.engine, self.commands = engine, []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        ok = self.engine or command[:2] != ["docker", "info"]
        return subprocess.CompletedProcess(command, 0 if ok else 1, "", "")


def build_with(name_or_path, engine=True, installed=True):
    runs, said = Runs(engine), []
    images.build(inventory.load(name_or_path), said.append, runs, lambda tool: f"/usr/bin/{tool}" if installed else None)
    return runs.commands[1:], said


def test_images_builds_then_loads_into_kind_or_k3d():
    context = str(IMAGE)
    commands, _ = build_with("kind")
    assert commands == [["docker", "build", "--tag", "jupyterhub-dbt:1.0.0", context],
                        ["kind", "load", "docker-image", "jupyterhub-dbt:1.0.0", "--name", "datamesh"]]
    commands, _ = build_with("k3d")
    assert commands[1] == ["k3d", "image", "import", "jupyterhub-dbt:1.0.0", "--cluster", "datamesh"]
    commands, _ = build_with("minikube")
    assert commands[1] == ["minikube", "image", "load", "jupyterhub-dbt:1.0.0", "--profile", "minikube"]
    commands, said = build_with("docker-desktop")
    assert commands == [["docker", "build", "--tag", "jupyterhub-dbt:1.0.0", context]]
    assert "ready" in said[-1]


def test_images_without_an_engine_says_so_in_one_sentence():
    with pytest.raises(DatameshError) as caught:
        build_with("kind", engine=False)
    message = str(caught.value)
    assert message.startswith("no Docker engine answers here (`docker info` failed)")
    assert "jupyterhub.use_built_image: false" in message and "minimal-notebook" in message
    assert message.count(". ") == 0 and message.endswith(".")


def test_images_on_a_cluster_that_cannot_take_a_local_image(write_inventory):
    commands, said = build_with("remote.example")  # use_built_image: false there
    assert commands == [["docker", "build", "--tag", "jupyterhub-dbt:1.0.0", str(IMAGE)]]
    assert "users still get quay.io/jupyter/minimal-notebook" in said[-1]
    path = write_inventory("cluster: {context: prod}\njupyterhub: {use_built_image: true}\n")
    with pytest.raises(DatameshError, match="pulls its images from a registry"):
        build_with(str(path))


def test_images_names_a_missing_loader():
    with pytest.raises(DatameshError, match="`docker` is not installed"):
        build_with("kind", installed=False)


def test_images_task_exits_non_zero_where_no_engine_answers(tmp_path):
    """The real command with no docker on PATH: nothing can be built, and it says so."""
    result = subprocess.run([sys.executable, "-m", "invoke", "images", "--inventory", "kind"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode != 0
    assert "error: no Docker engine answers here" in result.stderr and "Traceback" not in result.stderr
