"""What you got: every endpoint of the platform with its address from your machine, its in-cluster
name, its login (the lab password, or the command that reads a generated one) and its health; as a
table after a successful `up` and in `invoke status`, as JSON with `status --output json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from datamesh.inventory import Inventory
from datamesh.manifests import COMPONENT, TRINO_USERS_SECRET, URL_PATH, fqdn, label, secret_name

# nodeports key -> (namespace key, Secret, key of its password, credentials.users / lab_passwords key)
LOGINS = {
    "jupyterhub": ("jupyterhub", secret_name("jupyterhub"), "admin-password", "jupyterhub"),
    "minio-console": ("platform", secret_name("minio"), "root-password", "minio"),
    "grafana": ("platform", secret_name("grafana"), "admin-password", "grafana"),
    "trino": ("platform", TRINO_USERS_SECRET, "admin-password", "trino"),
}
COLUMNS = (("name", "ENDPOINT"), ("url", "URL"), ("in_cluster", "IN CLUSTER"), ("user", "USER"),
           ("health", "HEALTH"), ("password", "PASSWORD"))


@dataclass
class Endpoint:
    component: str
    name: str         # its key in the inventory's nodeports table
    url: str          # on the NodePort host (hosts.address)
    in_cluster: str   # host:port for pods
    user: str
    password: str     # the lab password, the command that reads it, or "" when there is no login
    health: str

    def to_json(self) -> dict:
        return asdict(self)


def password_command(namespace: str, secret: str, key: str) -> str:
    return f"kubectl -n {namespace} get secret {secret} -o go-template='{{{{index .data \"{key}\" | base64decode}}}}'"


def login(inventory: Inventory, name: str) -> tuple[str, str]:
    """The user and the password (or how to read it) of an endpoint; ("", "") when it needs no login."""
    if name not in LOGINS:
        return "", ""
    namespace, secret, key, who = LOGINS[name]
    credentials = inventory["credentials"]
    if name == "trino":
        if not inventory["security"]["trino_auth"]:
            return "any name", "none (security.trino_auth: false)"
        user = "admin"
    else:
        user = credentials["users"][who]
    if credentials["policy"] == "lab":
        return user, credentials["lab_passwords"][who]
    return user, password_command(inventory["namespaces"][namespace], secret, key)


def endpoints(inventory: Inventory, manifests: list[dict], health: Callable[[dict], str]) -> list[Endpoint]:
    """One row per NodePort of the manifests' Services; `health` says how each Service is."""
    names = {port: name for name, port in inventory["nodeports"].items()}
    address = inventory["hosts"]["address"]
    rows = []
    for obj in manifests:
        if obj["kind"] != "Service":
            continue
        meta = obj["metadata"]
        path = (meta.get("annotations") or {}).get(URL_PATH, "")
        for port in obj["spec"].get("ports", []):
            if "nodePort" not in port:
                continue
            name = names.get(port["nodePort"], meta["name"])
            scheme = "https" if port.get("name") == "https" else "http"
            user, password = login(inventory, name)
            rows.append(Endpoint(label(obj, COMPONENT) or "", name, f"{scheme}://{address}:{port['nodePort']}{path}",
                                 f"{fqdn(meta['name'], meta['namespace'])}:{port['port']}", user, password, health(obj)))
    return rows


def table(rows: list[Endpoint]) -> list[str]:
    """Aligned columns; the password column last, so a long command only lengthens its own line."""
    if not rows:
        return []
    cells = [[title for _, title in COLUMNS]] + [[getattr(row, key) or "-" for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1] for line in cells]
