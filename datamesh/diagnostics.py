"""The diagnostics bundle: when `up`, `seed` or `verify` fails, everything needed to see why, in one
folder (`.datamesh/diagnostics/<time>/`, gitignored) whose path is the last line the run prints.

    summary.txt                 what failed, and each pod of the failing components in one line
    recap.json                  the run's results (roles, seed steps or checks)
    rendered/NN-<role>.yaml     the objects `up` applies, as `invoke render` writes them
    pods/<ns>.<pod>.yaml        each pod as the API shows it (spec and status)
    pods/<ns>.<pod>.events.txt  its events, oldest first
    pods/<ns>.<pod>.<container>.log           the container's last LOG_LINES lines
    pods/<ns>.<pod>.<container>.previous.log  the run before its last restart, when there was one

Collecting never hides the failure: a cluster that cannot be read leaves a note in summary.txt.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from datamesh import ROOT
from datamesh.cluster import Cluster
from datamesh.diagnosis import container_states, events_text
from datamesh.errors import DatameshError
from datamesh.inventory import Inventory
from datamesh.manifests import COMPONENT, OURS, dump_all
from datamesh.role import Role

HOME = ROOT / ".datamesh" / "diagnostics"
LOG_LINES = 200


def bundle(inventory: Inventory, selected: list[Role], failures: list[tuple[str, str]], results: dict,
           home: Path = HOME) -> Path:
    """Write the bundle for `failures` (component or step, error) and return its folder.

    The pods gathered are those of the failing components when they are roles, else those of
    every selected component (a seed step or a check can fail for any of them)."""
    from datamesh.playbook import render_all, write_rendered

    folder = home / time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recap.json").write_text(json.dumps(results, indent=2) + "\n")
    summary = [f"{name} failed: {error}" for name, error in failures]
    try:
        write_rendered(render_all(selected, inventory), folder / "rendered")
    except DatameshError as exc:
        summary.append(f"the objects could not be rendered: {exc}")
    roles = {r.name for r in selected}
    components = sorted({name for name, _ in failures if name in roles} or roles)
    summary.append(f"\npods of {', '.join(components)}:")
    try:
        summary += pods(Cluster(inventory), inventory, components, folder / "pods")
    except DatameshError as exc:
        summary.append(f"  the cluster could not be read: {exc}")
    (folder / "summary.txt").write_text("\n".join(summary) + "\n")
    return folder


def pods(cluster: Cluster, inventory: Inventory, components: list[str], into: Path) -> list[str]:
    """Write each pod of ours of the components (spec, status, events, logs); one summary line each."""
    into.mkdir(parents=True, exist_ok=True)
    namespaces = set(inventory["namespaces"].values())
    lines = []
    for pod in cluster.list("v1", "Pod", labels=OURS):
        meta = pod["metadata"]
        if meta.get("namespace") not in namespaces or (meta.get("labels") or {}).get(COMPONENT) not in components:
            continue
        stem = f"{meta['namespace']}.{meta['name']}"
        (into / f"{stem}.yaml").write_text(dump_all([pod]))
        events = cluster.events(meta["namespace"], meta["name"])
        (into / f"{stem}.events.txt").write_text("".join(
            f"{e.get('lastTimestamp') or e.get('eventTime') or ''} {e.get('type', '')} {e.get('reason', '')}: "
            f"{(e.get('message') or '').strip()}\n" for e in events))
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            log = cluster.logs(meta["namespace"], meta["name"], status["name"], LOG_LINES)
            (into / f"{stem}.{status['name']}.log").write_text(log)
            if status.get("restartCount"):
                previous = cluster.logs(meta["namespace"], meta["name"], status["name"], LOG_LINES, previous=True)
                (into / f"{stem}.{status['name']}.previous.log").write_text(previous)
        phase = (pod.get("status") or {}).get("phase", "Unknown")
        states = container_states(pod)
        lines.append(f"  {stem}: {phase}" + (f" ({states})" if states else "")
                     + (f"; last events: {events_text(events)}" if events else ""))
    return lines or ["  none found"]


def after_results(inventory: Inventory, selected: list[Role], results: list) -> Path:
    """The bundle of a failed `up` or `seed` (its roles' or steps' Results)."""
    failures = [(r.role, r.error) for r in results if r.failed]
    return bundle(inventory, selected, failures, {"results": [r.to_json() for r in results]})


def after_checks(inventory: Inventory, selected: list[Role], checks: list) -> Path:
    """The bundle of a failed `verify` (its Checks)."""
    failures = [(c.component, f"{c.name}: {c.message}") for c in checks if c.status == "failed"]
    return bundle(inventory, selected, failures, {"checks": [vars(c) for c in checks]})
