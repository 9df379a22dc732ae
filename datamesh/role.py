"""The role contract: pure render, then check, apply and wait, giving one Result per role.

A role is a folder `roles/<name>/` whose `render.py` defines `render(vars) -> list[dict]` (pure:
no API, no randomness) and `DEPENDS_ON` (the roles that must have run before it). The engine
runs the steps the same way for every role, so roles stay data; a role's own checks
(`roles/<name>/verify.py`) belong to `invoke verify`.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

from datamesh import ROOT, diff
from datamesh.cluster import Cluster
from datamesh.errors import DatameshError
from datamesh.kube import ref
from datamesh.manifests import COMPONENT, DATA_KINDS, OURS, is_ours, label
from datamesh.wait import PREDICATES, wait_gone, wait_ready

ROLES_DIR = ROOT / "roles"
STATUSES = ("ok", "changed", "failed", "skipped")
FOREGROUND = {"StatefulSet", "Deployment", "Job", "ReplicaSet"}  # gone only once their pods are


@dataclass
class ObjectResult:
    kind: str
    namespace: str | None
    name: str
    status: str
    action: str = "none"

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"

    def to_json(self) -> dict:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name,
                "status": self.status, "action": self.action}


@dataclass
class Result:
    """What one role did: one entry per object, and the role's own failure if any."""

    role: str
    objects: list[ObjectResult] = field(default_factory=list)
    error: str = ""
    skipped: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.error)

    def count(self, status: str) -> int:
        return sum(1 for o in self.objects if o.status == status)

    def to_json(self) -> dict:
        return {"name": self.role, "error": self.error or None,
                "objects": [o.to_json() for o in self.objects]}


@dataclass
class Role:
    name: str
    module: ModuleType

    @property
    def depends_on(self) -> list[str]:
        return list(getattr(self.module, "DEPENDS_ON", []))

    def render(self, vars: dict[str, Any]) -> list[dict]:
        manifests = self.module.render(vars)
        for obj in manifests:
            _check_shape(self.name, obj)
        return manifests


def load(name: str) -> Role:
    module = load_module(name, "render")
    if not callable(getattr(module, "render", None)):
        raise DatameshError(f"roles/{name}/render.py defines no render(vars) function.")
    return Role(name, module)


def load_module(name: str, part: str) -> ModuleType:
    """roles/<name>/<part>.py (render, seed, verify) as a module."""
    path = ROLES_DIR / name / f"{part}.py"
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in ROLES_DIR.iterdir() if (p / f"{part}.py").is_file()))
        raise DatameshError(f"there is no role '{name}' with a {part}.py (no {path.relative_to(ROOT)}); "
                            f"roles with one: {known}.")
    spec = importlib.util.spec_from_file_location(f"datamesh_roles.{name.replace('-', '_')}.{part}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there while it executes
    spec.loader.exec_module(module)
    return module


def _check_shape(role: str, obj: dict) -> None:
    if not is_ours(obj) or label(obj, COMPONENT) != role:
        raise DatameshError(f"role {role} rendered {ref(obj)} without the {OURS} and {COMPONENT}={role} labels; "
                            "build its metadata with manifests.metadata().")


# -- the steps ------------------------------------------------------------------------------

@dataclass
class Planned:
    """One object after the check step: what to apply and whether it differs from live."""

    desired: dict
    live: dict | None
    changed: bool
    outcome: str = "pending"  # pending until apply: then ok, changed or failed

    def __post_init__(self) -> None:
        self.action = "create" if self.live is None else ("update" if self.changed else "none")


def identity(obj: dict) -> tuple[str, str | None, str]:
    """(kind, namespace, name): what makes an object one object, in a run's lookups."""
    return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


class Known:
    """The objects of ours listed at the start of a run (`listed`), by `identity`: what `check` reads
    without a request. An object not among them is read by itself, since one made by someone else
    without our labels lists under none and its live values (a Secret's passwords) must be kept;
    unless its namespace did not exist at the start, which one read per namespace tells."""

    def __init__(self, live: list[dict]):
        self.objects = {identity(o): o for o in live}
        self.absent: dict[str, bool] = {}

    def live(self, cluster: Cluster, obj: dict) -> dict | None:
        key = identity(obj)
        if key in self.objects:
            return self.objects[key]
        namespace = obj["metadata"].get("namespace")
        if namespace and ("Namespace", None, namespace) not in self.objects:
            if namespace not in self.absent:
                probe = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                self.absent[namespace] = cluster.get(probe) is None
            if self.absent[namespace]:
                return None
        return cluster.get(obj)


def check(cluster: Cluster, manifests: list[dict], secrets: dict[str, str] | None = None,
          known: Known | None = None) -> list[Planned]:
    """Decide for each object whether it differs from what the role renders; `known` saves the reads
    (else one GET per object). `secrets` collects the Secret values of the run, so a Secret may copy
    a key of one before it."""
    planned = []
    for obj in manifests:
        live = known.live(cluster, obj) if known is not None else cluster.get(obj)
        try:
            desired = diff.fill_generated(diff.stamp(obj), live, secrets)
        except ValueError as exc:
            raise DatameshError(f"{exc}; render the source Secret first.") from exc
        planned.append(Planned(desired, live, diff.needs_apply(desired, live)))
    return planned


def apply(cluster: Cluster, planned: list[Planned], on_object: Callable[[Planned], None] | None = None) -> None:
    """Server-side apply of the objects that differ, in render order; nothing else is written."""
    for item in planned:
        if item.changed:
            try:
                item.live = cluster.apply(item.desired)
            except DatameshError:
                item.outcome = "failed"
                raise
        item.outcome = "changed" if item.changed else "ok"
        if on_object:
            on_object(item)


def wait(cluster: Cluster, planned: list[Planned], timeout: int, pull_timeout: int,
         on_poll: Callable[[dict, str], None] | None = None) -> None:
    """Wait for the role's objects to be ready; unchanged objects already ready cost no request."""
    waiting = []
    for item in planned:
        kind = item.desired["kind"]
        if kind not in PREDICATES and kind != "Service":
            continue
        if not item.changed and (kind == "Service" or PREDICATES[kind](item.live)[0]):
            continue
        waiting.append(item.desired)
    if waiting:
        wait_ready(cluster, waiting, timeout, on_poll, pull_timeout)


# `security.network_policies: false` renders no NetworkPolicy at all: they are still looked for, so
# the policies an earlier run applied are pruned instead of staying enforced
SWITCHED_KINDS = {("networking.k8s.io/v1", "NetworkPolicy")}


def listed(cluster: Cluster, manifests: list[dict]) -> dict[str, list[dict]]:
    """kind -> the live objects of ours of that kind, for every kind these manifests use and the kinds
    a switch can stop rendering altogether: one LIST per kind, which is all a run that changes
    nothing reads."""
    kinds = sorted({(o["apiVersion"], o["kind"]) for o in manifests} | SWITCHED_KINDS)
    return {kind: cluster.list(api_version, kind, labels=OURS) for api_version, kind in kinds}


def ours(live: list[dict], namespaces: set[str]) -> list[dict]:
    """Of the listed objects, those pruning may consider: in our namespaces, data kinds aside."""
    return [obj for obj in live if obj["kind"] not in DATA_KINDS and obj["metadata"].get("namespace") in namespaces]


def stale(live: list[dict], role: str, manifests: list[dict]) -> list[dict]:
    """What the role made earlier and renders no more: a worker scaled to 0, a bucket Job of an old script."""
    wanted = {identity(o) for o in manifests}
    return [
        obj for obj in live
        if label(obj, COMPONENT) == role
        and obj["kind"] not in DATA_KINDS and not obj["metadata"].get("ownerReferences")
        and identity(obj) not in wanted
    ]


def prune(cluster: Cluster, objects: list[dict], timeout: int) -> list[ObjectResult]:
    """Delete stale objects and wait until they are gone."""
    deleted = [obj for obj in objects if cluster.delete(obj, "Foreground" if obj["kind"] in FOREGROUND else "Background")]
    wait_gone(cluster, deleted, timeout)
    return [ObjectResult(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"], "changed", "delete")
            for o in deleted]


def object_result(item: Planned) -> ObjectResult:
    """The object's line in the recap; objects a failure kept from being applied count as skipped."""
    meta = item.desired["metadata"]
    status = "skipped" if item.outcome == "pending" else item.outcome
    return ObjectResult(kind=item.desired["kind"], namespace=meta.get("namespace"), name=meta["name"],
                        status=status, action=item.action)
