"""`invoke status`: each component's objects and readiness, its addresses, where its logins are,
and the notices roles attach to their objects (annotation datamesh.io/notice), such as an upstream
that no longer ships fixes and the inventory key that switches away from it."""

from __future__ import annotations

from datamesh.cluster import Cluster
from datamesh.diff import COPIED, GENERATED
from datamesh.errors import shown
from datamesh.inventory import Inventory
from datamesh.kube import ref
from datamesh.manifests import NOTICE, URL_PATH
from datamesh.playbook import connect
from datamesh.report import Reporter
from datamesh.role import Role
from datamesh.wait import PREDICATES, readiness

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


def run(inventory: Inventory, selected: list[Role], reporter: Reporter, check: bool = False) -> bool:
    """`invoke status`: connect, print the table, and with `check` use each service once
    (datamesh/checks.py); True when every object exists and is ready and every check passed."""
    cluster = connect(inventory, reporter)
    healthy = show(cluster, inventory, selected, reporter)
    if check:
        from datamesh import checks, endpoints  # the probes' clients only when checking

        healthy = checks.run(endpoints.Endpoints(cluster, inventory), selected, reporter) and healthy
    return healthy


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


def show(cluster: Cluster, inventory: Inventory, selected: list[Role], reporter: Reporter) -> bool:
    """Print the status table; True when every object exists and is ready."""
    healthy = True
    secrets, addresses, notices, enforced = [], [], [], {}
    for role in selected:
        rows = []
        for obj in role.render(inventory.vars):
            live = cluster.get(obj)
            if obj["kind"] == "Namespace" and live:
                enforced[obj["metadata"]["name"]] = (live["metadata"].get("labels") or {}).get(PSA_ENFORCE, "none")
            if live is None:
                state = "missing"
                healthy = False
            elif obj["kind"] in PREDICATES or obj["kind"] == "Service":
                ready, why = readiness(cluster, obj, live)
                state = f"ready ({why})" if ready else f"NOT READY ({why})"
                healthy = healthy and ready
            else:
                state = "present"
            rows.append(f"  {ref(obj):<60} {state}")
            annotations = obj["metadata"].get("annotations") or {}
            if annotations.get(NOTICE):
                notices.append(f"{ref(obj)}: {annotations[NOTICE]}")
            if obj["kind"] == "Secret":
                secrets.append(obj)
            if obj["kind"] == "Service" and obj["spec"].get("type") == "NodePort":
                path = annotations.get(URL_PATH, "")
                addresses += [(obj["metadata"]["name"], p["nodePort"], path) for p in obj["spec"]["ports"] if "nodePort" in p]
        reporter.line(f"{role.name}:")
        for row in rows:
            reporter.line(row)
    if addresses:
        reporter.line(f"\naddresses (NodePorts on {inventory['hosts']['address']}):")
        for name, port, path in addresses:
            reporter.line(f"  {name:<24} http://{inventory['hosts']['address']}:{port}{path}")
    if secrets:
        reporter.line("\ncredentials (read one with the command shown):")
        for obj in secrets:
            meta = obj["metadata"]
            keys = list(obj.get("data", {}))
            password = next((k for k in keys if "password" in k), keys[0])
            annotations = meta.get("annotations", {})
            policy = ("generated once" if annotations.get(GENERATED) else
                      "copied from the domains' Secrets" if annotations.get(COPIED) else inventory["credentials"]["policy"])
            reporter.line(
                f"  {meta['namespace']}/{meta['name']} [{', '.join(keys)}] ({policy}): "
                f"kubectl -n {meta['namespace']} get secret {meta['name']} -o go-template='{{{{index .data \"{password}\" | base64decode}}}}'"
            )
    reporter.line(f"\nsecurity (settings in {shown(inventory.path)}):")
    for line in security_lines(inventory["security"], enforced):
        reporter.line(f"  {line}")
    if notices:
        reporter.line(f"\nnotices (settings live in {shown(inventory.path)}):")
        for notice in notices:
            reporter.line(f"  {notice}")
    return healthy
