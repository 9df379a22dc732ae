"""Rules over combinations of an inventory's settings: what no single value shows.

Pure, like datamesh/values.py, whose checks have passed when these run: distinct namespaces and
NodePorts, the credentials policy and its lab passwords, requests within limits, and each JVM's heap
within its container and Trino's query memory within that heap.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from datamesh import kube
from datamesh.values import Refusal, jvm_size, shown_value, trino_size

TRINO_HEADROOM = Decimal("0.3")  # Trino's memory.heap-headroom-per-node default: 30% of the heap


def refusal(vars: dict) -> Refusal | None:
    """The first combination of settings that would not work."""
    for rule in RULES:
        found = rule(vars)
        if found:
            return found
    return None


def distinct(section: str, what: str, advice: str) -> Callable[[dict], Refusal | None]:
    def rule(vars: dict) -> Refusal | None:
        seen: dict[Any, str] = {}
        for key, value in vars[section].items():
            if value in seen:
                first, second = f"{section}.{seen[value]}", f"{section}.{key}"
                return Refusal((second, first), f"keys '{first}' and '{second}' are both {what} {shown_value(value)}; {advice}.")
            seen[value] = key
        return None
    return rule


def lab_passwords(vars: dict) -> Refusal | None:
    creds = vars["credentials"]
    lab = creds["lab_passwords"]
    if creds["policy"] == "lab":
        missing = [name for name, password in lab.items() if not password]
        if missing:
            return Refusal(("credentials.policy", "credentials.lab_passwords"),
                           f"key 'credentials.policy' is 'lab', which needs credentials.lab_passwords for "
                           f"{', '.join(missing)}; set them or use policy 'generate'.")
    elif any(lab.values()):
        given = [f"credentials.lab_passwords.{name}" for name, password in lab.items() if password]
        return Refusal((given[0], "credentials.lab_passwords"),
                       f"key '{given[0]}' is only used with policy 'lab'; remove credentials.lab_passwords, "
                       "since this inventory generates its passwords.")
    return None


def distinct_reader(vars: dict) -> Refusal | None:
    users = vars["credentials"]["users"]
    if users["postgres_reader"] != users["postgres"]:
        return None
    return Refusal(("credentials.users.postgres_reader", "credentials.users.postgres"),
                   f"key 'credentials.users.postgres_reader' must differ from credentials.users.postgres "
                   f"(both {shown_value(users['postgres'])}): the read-only login is made NOSUPERUSER, which would demote "
                   "the databases' owner; choose another name.")


def requests_within_limits(vars: dict) -> Refusal | None:
    for component, spec in vars["resources"].items():
        for name, request in spec.get("requests", {}).items():
            limit = spec.get("limits", {}).get(name)
            if limit is not None and kube.quantity(request) > kube.quantity(limit):
                keys = (f"resources.{component}.requests.{name}", f"resources.{component}.limits.{name}")
                return Refusal(keys, f"key '{keys[0]}' ({request}) is more than '{keys[1]}' ({limit}), which Kubernetes "
                                     "refuses; raise the limit or lower the request.")
    return None


def heaps_fit(vars: dict) -> Refusal | None:
    """Each JVM's heap below its container's memory limit, and Trino's query memory within its heap."""
    containers = [("hive-metastore.heap", "hive-metastore"), ("trino.heap", "trino-coordinator")]
    if vars["trino"]["workers"] > 0:
        containers.append(("trino.heap", "trino-worker"))
    for key, component in containers:
        section, _, name = key.partition(".")
        heap_size, limit = vars[section][name], vars["resources"][component]["limits"]["memory"]
        if jvm_size(heap_size) >= kube.quantity(limit):
            limit_key = f"resources.{component}.limits.memory"
            return Refusal((key, limit_key), f"key '{key}' ({heap_size}) must be below '{limit_key}' ({limit}): "
                                             "the JVM needs memory besides its heap; lower the heap or raise the limit.")
    trino = vars["trino"]
    per_node = trino_size(trino["query_max_memory_per_node"])
    if per_node + jvm_size(trino["heap"]) * TRINO_HEADROOM > jvm_size(trino["heap"]):
        return Refusal(("trino.query_max_memory_per_node", "trino.heap"),
                       f"key 'trino.query_max_memory_per_node' ({trino['query_max_memory_per_node']}) plus Trino's heap "
                       f"headroom (30% of trino.heap {trino['heap']}) must fit in the heap, or Trino refuses to start; "
                       "lower it to at most 70% of the heap or raise trino.heap.")
    return None


RULES: list[Callable[[dict], Refusal | None]] = [
    distinct("namespaces", "the namespace", "give each its own namespace"),
    distinct("nodeports", "NodePort", "give each its own port"),
    lab_passwords,
    distinct_reader,
    requests_within_limits,
    heaps_fit,
]
