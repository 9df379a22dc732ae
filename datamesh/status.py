"""`invoke status`: each component's objects and readiness, its addresses, where its logins are,
and the notices roles attach to their objects (annotation datamesh.io/notice), such as an upstream
that no longer ships fixes and the inventory key that switches away from it."""

from __future__ import annotations

import json
import time

from datamesh import overview
from datamesh.cluster import Cluster
from datamesh.diff import COPIED, GENERATED
from datamesh.errors import shown
from datamesh.inventory import Inventory
from datamesh.kube import ref
from datamesh.manifests import NOTICE
from datamesh.playbook import connect
from datamesh.report import Reporter
from datamesh.role import Role
from datamesh.wait import PREDICATES, pause, readiness

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


def run(inventory: Inventory, selected: list[Role], reporter: Reporter, check: bool = False,
        output: str = "table") -> bool:
    """`invoke status`: connect, print the table (or the JSON document), and with `check` use each
    service once (datamesh/checks.py); True when every object exists and is ready and every check passed."""
    cluster = connect(inventory, reporter)
    found = collect(cluster, inventory, selected)
    healthy = found["healthy"]
    if output == "json":
        print(json.dumps(found, indent=2))
    else:
        show(found, inventory, reporter)
    if check:
        from datamesh import checks, endpoints  # the probes' clients only when checking

        healthy = checks.run(endpoints.Endpoints(cluster, inventory), selected, reporter) and healthy
    return healthy


def watch(inventory: Inventory, selected: list[Role], reporter: Reporter, every: float,
          rounds: int | None = None) -> bool:
    """`status --watch`: the table again every `every` seconds (redrawn in place on a terminal) until
    interrupted, or for `rounds` rounds; True when the last one was healthy."""
    cluster = connect(inventory, reporter)
    healthy, done = False, 0
    try:
        while rounds is None or done < rounds:
            found = collect(cluster, inventory, selected)
            if reporter.live:
                reporter.stream.write("\033[H\033[2J")
            reporter.line(f"{time.strftime('%H:%M:%S')}  every {every:g}s, Ctrl-C to stop  "
                          f"cluster: context {cluster.context}")
            show(found, inventory, reporter)
            healthy, done = found["healthy"], done + 1
            if rounds is None or done < rounds:
                pause(every)
    except KeyboardInterrupt:
        reporter.line("")
    return healthy


def collect(cluster: Cluster, inventory: Inventory, selected: list[Role]) -> dict:
    """Each component's objects and their state, the endpoints, the credentials Secrets, the
    protections and the notices: what `status` shows, as one JSON-ready document."""
    components, secrets, notices, enforced, services = [], [], [], {}, {}
    for role in selected:
        rows, healthy = [], True
        for obj in role.render(inventory.vars):
            live = cluster.get(obj)
            if obj["kind"] == "Namespace" and live:
                enforced[obj["metadata"]["name"]] = (live["metadata"].get("labels") or {}).get(PSA_ENFORCE, "none")
            ready = live is not None
            if live is None:
                state = "missing"
            elif obj["kind"] in PREDICATES or obj["kind"] == "Service":
                ready, why = readiness(cluster, obj, live)
                state = f"ready ({why})" if ready else f"NOT READY ({why})"
            else:
                state = "present"
            healthy = healthy and ready
            rows.append({"object": ref(obj), "state": state, "ready": ready})
            annotations = obj["metadata"].get("annotations") or {}
            if annotations.get(NOTICE):
                notices.append(f"{ref(obj)}: {annotations[NOTICE]}")
            if obj["kind"] == "Secret":
                secrets.append(credential(obj, inventory))
            if obj["kind"] == "Service":
                services[ref(obj)] = (obj, state)
        components.append({"name": role.name, "healthy": healthy, "objects": rows})
    manifests = [obj for obj, _ in services.values()]
    rows = overview.endpoints(inventory, manifests, lambda obj: services[ref(obj)][1])
    return {"healthy": all(c["healthy"] for c in components),
            "cluster": {"context": cluster.context, "server": cluster.server},
            "components": components, "endpoints": [row.to_json() for row in rows], "credentials": secrets,
            "security": security_lines(inventory["security"], enforced), "notices": notices}


def credential(obj: dict, inventory: Inventory) -> dict:
    """A credentials Secret: its keys, how its values came about, and the command that reads its password."""
    meta = obj["metadata"]
    keys = list(obj.get("data", {}))
    password = next((k for k in keys if "password" in k), keys[0])
    annotations = meta.get("annotations", {})
    policy = ("generated once" if annotations.get(GENERATED) else
              "copied from the domains' Secrets" if annotations.get(COPIED) else inventory["credentials"]["policy"])
    return {"secret": f"{meta['namespace']}/{meta['name']}", "keys": keys, "policy": policy,
            "read": overview.password_command(meta["namespace"], meta["name"], password)}


def security_lines(security: dict, enforced: dict[str, str]) -> list[str]:
    """The protections in force, a weakened one in capitals with the key that weakened it."""
    if security["network_policies"]:
        policies = ("network policies: on (default-deny ingress, then only the platform's paths; enforced only by a "
                    "CNI that implements NetworkPolicy: kind's kindnet since v0.24 and k3s's controller do, "
                    "Docker Desktop's does not)")
    else:
        policies = "network policies: OFF (security.network_policies: false): any pod can reach any database"
    level = security["pod_security"]
    pods = f"pod security: {level} enforced" if level == "restricted" else \
        f"pod security: WEAKER, {level} enforced (security.pod_security: {level}); restricted only warns"
    if enforced:
        pods += " (live: " + ", ".join(f"{ns}={value}" for ns, value in enforced.items()) + ")"
    trino = ("trino: password logins over HTTPS and file-based access rules" if security["trino_auth"] else
             "trino: OFF (security.trino_auth: false): anyone names any user and reads and writes everything")
    return [policies, pods, trino]


def show(found: dict, inventory: Inventory, reporter: Reporter) -> None:
    """Print `collect`'s document as the status table."""
    for component in found["components"]:
        reporter.line(f"{component['name']}:")
        for row in component["objects"]:
            reporter.line(f"  {row['object']:<60} {row['state']}")
    if found["endpoints"]:
        reporter.line(f"\nendpoints (NodePorts on {inventory['hosts']['address']}):")
        for line in overview.table([overview.Endpoint(**row) for row in found["endpoints"]]):
            reporter.line(f"  {line}")
    if found["credentials"]:
        reporter.line("\ncredentials (read one with the command shown):")
        for secret in found["credentials"]:
            reporter.line(f"  {secret['secret']} [{', '.join(secret['keys'])}] ({secret['policy']}): {secret['read']}")
    reporter.line(f"\nsecurity (settings in {shown(inventory.path)}):")
    for line in found["security"]:
        reporter.line(f"  {line}")
    if found["notices"]:
        reporter.line(f"\nnotices (settings live in {shown(inventory.path)}):")
        for notice in found["notices"]:
            reporter.line(f"  {notice}")
