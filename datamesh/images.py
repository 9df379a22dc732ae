"""`invoke images`: build the single-user image users' JupyterLab runs, and hand it to the cluster.

The image (`images.jupyterhub-user`, built from files/images/jupyterhub-dbt) needs a Docker
engine that answers `docker info`. Where the cluster runs on that engine (Docker Desktop) it
sees the image at once; kind, k3d and minikube keep their own image stores, so the image is
loaded into the cluster the inventory's context names (`kind-<name>`, `k3d-<name>`, a minikube
profile). Other clusters pull images from a registry: push it there yourself, or set
`jupyterhub.use_built_image: false` so users get `images.jupyterhub-user-fallback`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable

from datamesh import ROOT
from datamesh.errors import DatameshError, shown
from datamesh.inventory import Inventory

BUILD_CONTEXT = ROOT / "files" / "images" / "jupyterhub-dbt"
PROBE_SECONDS = 20

Runner = Callable[..., subprocess.CompletedProcess]


@dataclass
class Step:
    what: str
    command: list[str]


def loader(inventory: Inventory, image: str) -> Step | None:
    """How the cluster of the inventory's context gets a local image; None when it cannot.

    Docker Desktop's cluster shares the engine that built the image: its step does nothing.
    """
    context = inventory["cluster"]["context"] or ""
    if context == "docker-desktop":
        return Step("hand it to Docker Desktop's cluster (same engine, nothing to load)", [])
    if context.startswith("kind-"):
        return Step("load it into kind", ["kind", "load", "docker-image", image, "--name", context[len("kind-"):]])
    if context.startswith("k3d-"):
        return Step("import it into k3d", ["k3d", "image", "import", image, "--cluster", context[len("k3d-"):]])
    if context == "minikube":
        return Step("load it into minikube", ["minikube", "image", "load", image, "--profile", "minikube"])
    return None


def plan(inventory: Inventory) -> list[Step]:
    image = inventory["images"]["jupyterhub-user"]
    steps = [Step(f"build {image}", ["docker", "build", "--tag", image, str(BUILD_CONTEXT)])]
    load = loader(inventory, image)
    if load and load.command:
        steps.append(load)
    return steps


def engine_answers(run: Runner = subprocess.run) -> bool:
    try:
        result = run(["docker", "info"], capture_output=True, text=True, timeout=PROBE_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def build(inventory: Inventory, say: Callable[[str], None] = print, run: Runner = subprocess.run,
          which: Callable[[str], str | None] = shutil.which) -> None:
    """Build the image and load it where the inventory's cluster needs it; one sentence on failure."""
    image, fallback = inventory["images"]["jupyterhub-user"], inventory["images"]["jupyterhub-user-fallback"]
    if not engine_answers(run):
        raise DatameshError(
            f"no Docker engine answers here (`docker info` failed), so {image} "
            f"cannot be built: start Docker and run `invoke images` again, or set jupyterhub.use_built_image: false "
            f"in {shown(inventory.path)} so users get {fallback}."
        )
    for step in plan(inventory):
        tool = step.command[0]
        if which(tool) is None:
            raise DatameshError(f"cannot {step.what}: `{tool}` is not installed or not on PATH; install it and run `invoke images` again.")
        say(f"images: {step.what}: {' '.join(step.command)}")
        if run(step.command).returncode != 0:
            raise DatameshError(f"could not {step.what} (`{' '.join(step.command)}` failed, its output is above); fix that and run `invoke images` again.")
    uses_it = inventory["jupyterhub"]["use_built_image"]
    context = inventory["cluster"]["context"] or "(the kubeconfig's current context)"
    if loader(inventory, image) is None:
        where = (f"the cluster of context {context} ({inventory.path.name}) pulls its images from a registry: "
                 f"push {image} to one it reaches and set images.jupyterhub-user to that name")
        if uses_it:
            raise DatameshError(f"built {image}, but {where}, or set jupyterhub.use_built_image: false so users get {fallback}.")
        say(f"images: built {image}; users still get {fallback}, since {where} before setting jupyterhub.use_built_image: true.")
        return
    if not uses_it:
        say(f"images: {inventory.path.name} sets jupyterhub.use_built_image: false, so users still get {fallback}; "
            "set it to true to give them this image.")
    say(f"images: {image} is ready for the cluster of context {context}")
