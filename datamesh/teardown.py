"""`invoke down`: remove exactly the components asked for and keep everyone's data.

Components are the roles of the up playbook. Only objects that are ours (`manifests.is_ours`)
with the component's label are deleted; anything else in our namespaces is left alone and
mentioned. Data is kept unless purging: volumes (PVCs), the namespaces that hold them, and the
credentials Secrets whose passwords those volumes were initialised with. Deletion runs in reverse
playbook order and waits until objects are gone.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from typing import Callable

from datamesh import checklist, playbook as playbooks
from datamesh.cluster import Cluster
from datamesh.errors import DatameshError
from datamesh.inventory import Inventory
from datamesh.kube import ref
from datamesh.manifests import COMPONENT, DATA_KINDS, OURS, is_ours, label
from datamesh.report import Reporter
from datamesh.role import FOREGROUND, ObjectResult, Result, Role
from datamesh.wait import wait_gone

DATA_COMPONENTS = {"credentials"}  # passwords the kept volumes were initialised with
EXTRA_KINDS = [("v1", "Pod"), ("v1", "PersistentVolumeClaim")]  # made by controllers or KubeSpawner
SYSTEM_OBJECTS = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


@dataclass
class Teardown:
    """What `down` will do: per component, the objects to delete and to keep; foreign objects."""

    components: list[str]
    delete: dict[str, list[dict]] = field(default_factory=dict)
    keep: dict[str, list[dict]] = field(default_factory=dict)
    foreign: list[dict] = field(default_factory=list)
    release: list[dict] = field(default_factory=list)  # purged namespaces kept for what is not ours


def select(playbook_roles: list[Role], requested: list[str], cascade: bool, present: set[str]) -> list[str]:
    """The components to remove, in reverse playbook order, refusing to strand a dependent.

    A dependent counts when some object of it is in the cluster; `cascade` adds dependents.
    """
    names = [r.name for r in playbook_roles]
    unknown = [n for n in requested if n not in names]
    if unknown:
        raise DatameshError(f"--components names {', '.join(unknown)}, which is no component; components are: {', '.join(names)}.")
    chosen = set(requested or names)
    while True:
        stranded = [
            r.name for r in playbook_roles
            if r.name not in chosen and r.name in present and any(d in chosen for d in r.depends_on)
        ]
        if not stranded:
            break
        if not cascade:
            needed = sorted({d for r in playbook_roles if r.name in stranded for d in r.depends_on if d in chosen})
            raise DatameshError(
                f"{', '.join(needed)} {'is' if len(needed) == 1 else 'are'} needed by {', '.join(stranded)}, which would stay; "
                f"add {', '.join(stranded)} to --components, or pass --cascade to remove {'it' if len(stranded) == 1 else 'them'} too."
            )
        chosen.update(stranded)
    return [n for n in reversed(names) if n in chosen]


def survey(cluster: Cluster, inventory: Inventory, rendered: dict[str, list[dict]]) -> list[dict]:
    """Every object of the kinds we render (plus pods and volumes) in our namespaces, one list per kind."""
    namespaces = set(inventory["namespaces"].values())
    kinds = {(obj["apiVersion"], obj["kind"]) for objects in rendered.values() for obj in objects}
    kinds.update(EXTRA_KINDS)
    found = []
    for api_version, kind in sorted(kinds):
        for obj in cluster.list(api_version, kind):
            meta = obj["metadata"]
            if kind == "Namespace" and meta["name"] in namespaces:
                found.append(obj)
            elif meta.get("namespace") in namespaces:
                found.append(obj)
    return found


def present_components(objects: list[dict]) -> set[str]:
    return {label(o, COMPONENT) for o in objects if is_ours(o)} - {None}


def plan(objects: list[dict], components: list[str], purge: bool) -> Teardown:
    """Sort the surveyed objects into delete, keep and foreign for the chosen components."""
    teardown = Teardown(components)
    teardown.foreign = [o for o in objects if _foreign(o)]
    foreign_namespaces = {o["metadata"].get("namespace") for o in teardown.foreign}
    for obj in objects:
        meta = obj["metadata"]
        if meta.get("ownerReferences") or not is_ours(obj):
            continue  # owned objects go with their owner; what is not ours is never touched
        component = label(obj, COMPONENT)
        if component not in components:
            continue
        data = obj["kind"] in DATA_KINDS or component in DATA_COMPONENTS
        keep = not purge and data
        if purge and obj["kind"] == "Namespace" and meta["name"] in foreign_namespaces:
            keep = True  # deleting it would delete what is not ours: it stops being ours instead
            teardown.release.append(obj)
        (teardown.keep if keep else teardown.delete).setdefault(component, []).append(obj)
    for component in components:
        teardown.delete.setdefault(component, [])
        teardown.keep.setdefault(component, [])
        teardown.delete[component].sort(key=_order)
    return teardown


def _foreign(obj: dict) -> bool:
    """Not ours, not a namespace, not owned by something else and not made by Kubernetes itself."""
    meta = obj["metadata"]
    return not is_ours(obj) and obj["kind"] != "Namespace" and not meta.get("ownerReferences") \
        and (obj["kind"], meta["name"]) not in SYSTEM_OBJECTS \
        and not (obj["kind"] == "Secret" and obj.get("type") == "kubernetes.io/service-account-token")


def _order(obj: dict) -> int:
    """Workloads first (they free their volumes), namespaces last."""
    return {"Namespace": 3, "PersistentVolumeClaim": 2}.get(obj["kind"], 0 if obj["kind"] in FOREGROUND else 1)


def run(cluster: Cluster, teardown: Teardown, timeout: int, reporter: Reporter) -> list[Result]:
    """Delete, component by component, and wait for each component's objects to be gone."""
    results = []
    failed = False
    for component in teardown.components:
        result = Result(component)
        results.append(result)
        if failed:
            result.skipped = True
            reporter.role_skipped(component)
            continue
        reporter.role_start(component)
        for obj in teardown.keep[component]:
            if obj in teardown.release:
                cluster.apply({"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": {"name": obj["metadata"]["name"]}})
                result.objects.append(_result(obj, "changed", "release"))
                reporter.line(f"  released: {ref(obj)} (kept for objects not ours; datamesh's labels removed)")
                continue
            result.objects.append(_result(obj, "ok", "keep"))
            reporter.line(f"  kept:    {ref(obj)}")
        try:
            deleted = []
            for obj in teardown.delete[component]:
                propagation = "Foreground" if obj["kind"] in FOREGROUND else "Background"
                if cluster.delete(obj, propagation):
                    deleted.append(obj)
                    reporter.line(f"  deleted: {ref(obj)}")
                    result.objects.append(_result(obj, "changed", "delete"))
            wait_gone(cluster, deleted, timeout)
        except DatameshError as exc:
            result.error = str(exc)
            failed = True
            reporter.role_failed(component, result.error)
    return results


def _result(obj: dict, status: str, action: str) -> ObjectResult:
    meta = obj["metadata"]
    return ObjectResult(obj["kind"], meta.get("namespace"), meta["name"], status, action)


def describe(teardown: Teardown, reporter: Reporter, dry_run: bool) -> None:
    """Print the plan: what goes, what stays and why, what is not ours."""
    verb = "would delete" if dry_run else "will delete"
    for component in teardown.components:
        for obj in teardown.delete[component]:
            reporter.line(f"- {verb:<12} [{component}] {ref(obj)}")
        for obj in teardown.keep[component]:
            if obj in teardown.release:
                reporter.line(f"= keep         [{component}] {ref(obj)} (holds objects not ours; only datamesh's labels go)")
                continue
            why = {"PersistentVolumeClaim": "data volume", "Namespace": "holds data volumes"}.get(obj["kind"], "credentials of kept data")
            reporter.line(f"= keep         [{component}] {ref(obj)} ({why}; --purge removes it)")
    for obj in teardown.foreign:
        reporter.line(f"  left alone   {ref(obj)}: not labelled {OURS}")


def confirm_purge(teardown: Teardown, ask: Callable[[str], str]) -> None:
    volumes = [ref(o) for objects in teardown.delete.values() for o in objects if o["kind"] in DATA_KINDS]
    answer = ask(f"--purge deletes {len(volumes)} volume(s) and namespace(s) for good, with their data:\n  "
                 + "\n  ".join(volumes) + "\nType 'purge' to go ahead: ")
    if answer.strip() != "purge":
        raise DatameshError("purge not confirmed, nothing was deleted; type 'purge' at the prompt or pass --yes.")


def down(inventory: Inventory, reporter: Reporter, *, requested: list[str], selective: bool, cascade: bool,
         purge: bool, dry_run: bool, yes: bool, lock_timeout: float | None = None) -> list[Result] | None:
    """The whole of `invoke down`; None when there is nothing to recap (a dry run, or nothing chosen)."""
    ask = input if sys.stdin.isatty() and sys.stdout.isatty() else None  # None: no terminal to ask on
    book = playbooks.load("up")
    selective = selective and not requested
    if selective:
        if ask is None:
            raise DatameshError("--selective asks on a terminal and there is none: name the components with --components a,b.")
        requested = checklist.ask(book.roles, inventory, removing=True)
        if not requested:
            reporter.line("nothing chosen; nothing removed.")
            return None
    cluster = playbooks.connect(inventory, reporter)
    with contextlib.nullcontext() if dry_run else playbooks.locked(cluster, inventory, "down", lock_timeout, reporter):
        objects = survey(cluster, inventory, playbooks.render_all(book.roles, inventory))
        components = select(book.roles, requested, cascade, present_components(objects))
        teardown = plan(objects, components, purge)
        describe(teardown, reporter, dry_run)
        if dry_run:
            return None
        if selective and not checklist.confirm(f"Delete what is marked '-' above from {', '.join(components)}?"):
            reporter.line("not confirmed; nothing removed.")
            return None
        if purge and not yes and any(o["kind"] in DATA_KINDS for objs in teardown.delete.values() for o in objs):
            if ask is None:
                raise DatameshError("--purge deletes data volumes and needs a confirmation: run it on a terminal, or add --yes.")
            confirm_purge(teardown, ask)
        results = run(cluster, teardown, inventory["timeouts"]["ready"], reporter)
    reporter.requests = dict(cluster.requests)
    return results
