"""Playbooks: which roles run, in which order, and the runs themselves (up, plan, render); how
`up` converges the roles is datamesh/converge.py.

`playbooks/<name>.yml` lists roles in order. `--only` and `--skip` select a subset; a selection
that leaves out a dependency of a selected role is refused with the dependency named, never
silently widened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from datamesh import ROOT, converge as converging, diff, inventory as inventories, role as roles
from datamesh.cluster import Cluster
from datamesh.errors import DatameshError, shown
from datamesh.inventory import Inventory
from datamesh.kube import ref
from datamesh.lock import Lock
from datamesh.manifests import dump_all
from datamesh.report import Reporter
from datamesh.role import Result, Role

PLAYBOOK_DIR = ROOT / "playbooks"


@dataclass
class Playbook:
    name: str
    roles: list[Role]

    def names(self) -> list[str]:
        return [r.name for r in self.roles]


def role_names(name: str) -> list[str]:
    """The roles `playbooks/<name>.yml` lists, in order."""
    path = PLAYBOOK_DIR / f"{name}.yml"
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise DatameshError(f"playbook {shown(path)} cannot be read ({exc.strerror}).") from exc
    if not isinstance(data, dict) or not isinstance(data.get("roles"), list):
        raise DatameshError(f"playbook {shown(path)} must be a mapping with a 'roles:' list.")
    return [str(n) for n in data["roles"]]


def load(name: str) -> Playbook:
    path = PLAYBOOK_DIR / f"{name}.yml"
    loaded = [roles.load(n) for n in role_names(name)]
    seen: set[str] = set()
    for role in loaded:
        missing = [d for d in role.depends_on if d not in seen]
        if missing:
            raise DatameshError(
                f"playbook {shown(path)} runs {role.name} before its dependencies {', '.join(missing)}; move them earlier."
            )
        seen.add(role.name)
    return Playbook(name, loaded)


def parse_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def select(playbook: Playbook, only: Iterable[str] = (), skip: Iterable[str] = (), dependencies: bool = True) -> list[Role]:
    """The roles to run; refuses unknown names and, with `dependencies`, selections missing a dependency
    (checks of one role need none of the others: `invoke verify` passes False)."""
    only, skip = list(only), list(skip)
    known = playbook.names()
    for flag, names in (("--only", only), ("--skip", skip)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DatameshError(
                f"{flag} names {', '.join(unknown)}, which the {playbook.name} playbook does not have; roles are: {', '.join(known)}."
            )
    chosen = [r for r in playbook.roles if (not only or r.name in only) and r.name not in skip]
    names = {r.name for r in chosen}
    for role in chosen if dependencies else []:
        missing = [d for d in role.depends_on if d not in names]
        if missing:
            need = ", ".join(missing)
            raise DatameshError(
                f"role {role.name} depends on {need}, which this selection leaves out; "
                f"add {need} to --only or take it out of --skip."
            )
    if not chosen:
        raise DatameshError("the selection leaves no role to run; check --only and --skip.")
    return chosen


def selection(inventory: str | None, only: Iterable[str] = (), skip: Iterable[str] = (),
              dependencies: bool = True) -> tuple[Inventory, list[Role]]:
    """A task's --inventory, --only and --skip as the loaded inventory and the up playbook's roles to run."""
    loaded = inventories.load(inventory)
    return loaded, select(load("up"), only, skip, dependencies)


def render_all(selected: list[Role], inventory: Inventory) -> dict[str, list[dict]]:
    return {role.name: role.render(inventory.vars) for role in selected}


def render(inventory: Inventory, selected: list[Role], out: Path) -> list[Path]:
    """`invoke render`: the selected roles' manifests written under `out`; no cluster needed."""
    return write_rendered(render_all(selected, inventory), out)


def write_rendered(rendered: dict[str, list[dict]], out: Path) -> list[Path]:
    """One YAML file per role, numbered in playbook order so `kubectl apply -f DIR` keeps it."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (name, manifests) in enumerate(rendered.items()):
        path = out / f"{index:02d}-{name}.yaml"
        path.write_text(dump_all(manifests))
        written.append(path)
    return written


def connect(inventory: Inventory, reporter: Reporter) -> Cluster:
    """The connection, after saying which cluster it is (first, so a wrong context shows before any wait)."""
    cluster = Cluster(inventory)
    reporter.line(f"cluster: context {cluster.context} at {cluster.server}")
    cluster.ping()
    return cluster


def locked(cluster: Cluster, inventory: Inventory, task: str, timeout: float | None, reporter: Reporter) -> Lock:
    """The platform's lock for a run that writes (`up`, `down`, `seed`): --lock-timeout, else timeouts.lock."""
    wait = inventory["timeouts"]["lock"] if timeout is None else timeout
    return Lock(cluster, inventory["namespaces"]["platform"], task, wait, reporter.line)


def up(inventory: Inventory, selected: list[Role], reporter: Reporter, lock_timeout: float | None = None,
       doctor: bool = True) -> list[Result]:
    """Converge the selected roles in order (check, apply, wait, verify) holding the platform's lock;
    after a failed role the rest are skipped. First `invoke doctor`'s checks (unless `doctor` is False):
    a ✗ refuses before anything is applied."""
    rendered = render_all(selected, inventory)
    cluster = connect(inventory, reporter)
    reporter.line(f"inventory: {inventory.path} | roles: {', '.join(r.name for r in selected)}")
    if doctor:
        from datamesh import doctor as doctors

        problems = doctors.failed(doctors.run(inventory, [o for objs in rendered.values() for o in objs], reporter.line,
                                              cluster))
        if problems:
            raise DatameshError(f"the doctor found {len(problems)} problem(s) and nothing was applied; first, "
                                f"{problems[0].check}: {problems[0].message}. Fix it, or pass --skip-doctor to go ahead.")
    with locked(cluster, inventory, "up", lock_timeout, reporter):
        start = converging.prepare(inventory, rendered, cluster, reporter, budget=not doctor)
        return converging.converge(inventory, selected, reporter, start)


def what_you_got(inventory: Inventory, selected: list[Role], results: list[Result], reporter: Reporter) -> None:
    """After a successful `up`: every endpoint with its URL, in-cluster name, login and health
    (its role converged and passed its checks just now, so no request is spent on it)."""
    from datamesh import overview
    from datamesh.manifests import COMPONENT, label

    verified = {r.role for r in results if not r.failed and not r.skipped}
    manifests = [obj for objects in render_all(selected, inventory).values() for obj in objects]
    rows = overview.endpoints(inventory, manifests,
                              lambda obj: "ready (verified)" if label(obj, COMPONENT) in verified else "not verified")
    if rows:
        reporter.line(f"\nENDPOINTS (NodePorts on {inventory['hosts']['address']}; `invoke status` shows them again) " + "*" * 10)
        for line in overview.table(rows):
            reporter.line(line)


@dataclass
class PlanEntry:
    role: str
    ref: str
    action: str
    diff: list[str]


def plan(inventory: Inventory, selected: list[Role], reporter: Reporter) -> list[PlanEntry]:
    """Print what `up` would change, per object, with a server-side dry run of each update."""
    start = converging.prepare(inventory, render_all(selected, inventory), connect(inventory, reporter), reporter)
    rendered, cluster = start.rendered, start.cluster
    entries, secrets = [], {}
    for role in selected:
        for item in roles.check(cluster, rendered[role.name], secrets, start.known):
            label = roles.object_result(item).ref
            if item.action == "update":
                after = cluster.apply(item.desired, dry_run=True)
                lines = diff.unified(item.live, after, label)
            elif item.action == "create":
                lines = diff.unified(None, item.desired, label)
            else:
                lines = []
            entries.append(PlanEntry(role.name, label, item.action, lines))
        for obj in roles.stale(start.prunable, role.name, rendered[role.name]):
            entries.append(PlanEntry(role.name, ref(obj), "delete", diff.unified(obj, None, ref(obj))))
    marks = {"create": "+", "update": "~", "delete": "-", "none": "="}
    for entry in entries:
        reporter.line(f"{marks[entry.action]} {entry.action:<7} [{entry.role}] {entry.ref}")
        for line in entry.diff:
            reporter.line(f"    {line}")
    changes = sum(1 for e in entries if e.action != "none")
    reporter.line(f"\nplan: {changes} to change, {len(entries) - changes} unchanged")
    return entries
