"""How `up` converges the selected roles: what the run starts from (the budget checked, the live
objects of ours listed once), then check and apply role by role, each role's wait, pruning and
checks coming when a later role depends on it, or at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from datamesh import live_checks, role as roles
from datamesh.budget import preflight
from datamesh.cluster import Cluster
from datamesh.errors import DatameshError
from datamesh.inventory import Inventory
from datamesh.live_checks import Listing
from datamesh.report import Reporter
from datamesh.role import Result, Role


@dataclass
class Start:
    """What `up` and `plan` start from: the rendered roles, the connection, and the live objects of
    ours listed once (`known` for checking, `prunable` for pruning)."""

    rendered: dict[str, list[dict]]
    cluster: Cluster
    known: roles.Known
    prunable: list[dict]
    by_kind: dict[str, list[dict]]


def prepare(inventory: Inventory, rendered: dict[str, list[dict]], cluster: Cluster, reporter: Reporter,
            budget: bool = True) -> Start:
    """Check the cluster against the budget (unless the doctor just did), and list what of ours is there."""
    everything = [obj for manifests in rendered.values() for obj in manifests]
    if budget:
        preflight(cluster, everything, inventory, warn=reporter.warning)
    by_kind = roles.listed(cluster, everything)
    live = [obj for objects in by_kind.values() for obj in objects]
    return Start(rendered, cluster, roles.Known(live), roles.ours(live, set(inventory["namespaces"].values())), by_kind)


@dataclass
class Underway:
    """A role applied whose wait, pruning and checks are still to come."""

    result: Result
    rendered: list[dict]
    planned: list[roles.Planned]


def converge(inventory: Inventory, selected: list[Role], reporter: Reporter, start: Start) -> list[Result]:
    """Check and apply each role in playbook order; its wait, pruning and checks come when a later
    role depends on it, or at the end: roles nobody waits on (the apps) get ready together, and
    independent ones (postgres and minio) start side by side."""
    cluster = start.cluster
    listing = Listing(cluster)
    listing.seed(start.by_kind)
    results: list[Result] = []
    underway: dict[str, Underway] = {}
    secrets: dict[str, str] = {}

    def finish(names: list[str]) -> bool:
        """Finish the roles named that are underway, in playbook order; False when one failed."""
        ok = True
        for name in [n for n in underway if n in names]:
            item = underway.pop(name)
            reporter.phase(name, "waiting for readiness")
            try:
                roles.wait(cluster, item.planned, inventory["timeouts"]["ready"], inventory["timeouts"]["pull"],
                           on_poll=reporter.waiting)
                pruned = roles.prune(cluster, roles.stale(start.prunable, name, item.rendered), inventory["timeouts"]["ready"])
                item.result.objects += pruned
                for entry in pruned:
                    reporter.object_done(entry)
                if pruned or any(p.changed for p in item.planned):
                    listing.clear()
                verified(name, item.rendered, listing, cluster, reporter)
            except DatameshError as exc:
                item.result.error, ok = str(exc), False
                reporter.role_failed(name, item.result.error)
        return ok

    failed = False
    for role in selected:
        result = Result(role.name)
        results.append(result)
        failed = failed or not finish(role.depends_on)
        if failed:
            result.skipped = True
            reporter.role_skipped(role.name)
            continue
        reporter.role_start(role.name)
        rendered = start.rendered[role.name]
        planned: list[roles.Planned] = []
        try:
            planned = roles.check(cluster, rendered, secrets, start.known)
            roles.apply(cluster, planned, on_object=lambda item: reporter.object_done(roles.object_result(item)))
            underway[role.name] = Underway(result, rendered, planned)
        except DatameshError as exc:
            result.error, failed = str(exc), True
            reporter.role_failed(role.name, result.error)
        result.objects = [roles.object_result(item) for item in planned]
    if underway:
        reporter.line("\nWAITING for " + ", ".join(underway))
        finish(list(underway))
    reporter.requests = dict(cluster.requests)
    return results


def verified(role: str, rendered: list[dict], listing: Listing, cluster: Cluster, reporter: Reporter) -> None:
    """The role's fourth step: the checks of its live objects that need only the API
    (datamesh/live_checks.py, also part of `invoke verify`); the first failure fails the role."""
    reporter.verifying(role)
    checks = live_checks.run(role, rendered, listing, cluster)
    failed = [(name, problem) for name, problem in checks if problem]
    reporter.line(f"  {role}: verified, {len(checks) - len(failed)} of {len(checks)} checks passed")
    if failed:
        name, problem = failed[0]
        raise DatameshError(f"check '{name}' failed: {problem}; {live_checks.NEXT_STEP}.")
