"""The budget preflight: refuse before applying when the platform cannot fit on the nodes.

Pods whose requests exceed what is free stay Pending with "Insufficient memory"; saying so
before anything is applied saves a half-converged platform. Free means the schedulable nodes'
allocatable minus what pods that are not ours already request. Pods that a workload starts by
itself (JupyterHub's user servers) are declared on it with the `datamesh.io/extra-requests`
annotation, e.g. `cpu=250m,memory=1Gi`, and counted like the rest.

Limits are only warned about: the scheduler admits pods by their requests, so limits above the
nodes' allocatable still converge, but under load the node runs out of memory and the kernel
kills containers. `datamesh.io/extra-limits` declares the limits of the pods a workload starts
by itself; without it their requests stand in for their limits. A container without a limit
adds nothing, so the sum is a floor (every container we render has limits).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable


from datamesh.cluster import Cluster
from datamesh.errors import DatameshError
from datamesh.inventory import Inventory
from datamesh.kube import quantity, ref
from datamesh.manifests import is_ours

WORKLOADS = ("StatefulSet", "Deployment", "ReplicaSet", "DaemonSet")
EXTRA_REQUESTS = "datamesh.io/extra-requests"
EXTRA_LIMITS = "datamesh.io/extra-limits"


def pod_requests(pod_spec: dict, kind: str = "requests") -> dict[str, Decimal]:
    """CPU and memory a pod asks for (or, with kind="limits", may use): its containers' sum, or
    its largest init container."""
    def total(containers: list[dict]) -> dict[str, Decimal]:
        out = {"cpu": Decimal(0), "memory": Decimal(0)}
        for container in containers:
            amounts = (container.get("resources") or {}).get(kind) or {}
            for resource in out:
                if resource in amounts:
                    out[resource] += quantity(amounts[resource])
        return out

    main = total(pod_spec.get("containers", []))
    for init in pod_spec.get("initContainers") or []:
        single = total([init])
        for resource in main:
            main[resource] = max(main[resource], single[resource])
    return main


def extra_requests(obj: dict, annotation: str = EXTRA_REQUESTS) -> dict[str, Decimal]:
    """What the pods an object starts by itself request, from its `datamesh.io/extra-requests` annotation
    (or another annotation of that form, such as `datamesh.io/extra-limits`)."""
    text = (obj.get("metadata", {}).get("annotations") or {}).get(annotation, "")
    out = {"cpu": Decimal(0), "memory": Decimal(0)}
    for item in filter(None, (part.strip() for part in text.split(","))):
        resource, _, amount = (s.strip() for s in item.partition("="))
        try:
            if resource not in out:
                raise ValueError(resource)
            out[resource] += quantity(amount)
        except ValueError:
            raise DatameshError(
                f"{ref(obj)} has annotation {annotation}: {text!r}, which is not a list like cpu=250m,memory=1Gi; "
                "fix the role that renders it."
            ) from None
    return out


def requested(manifests: list[dict], extra: dict[str, Decimal] | None = None, kind: str = "requests") -> dict[str, Decimal]:
    """The sum of requests (or limits) of every long-running pod the manifests will create, or declare they start."""
    out = {"cpu": Decimal(0), "memory": Decimal(0)}
    for obj in manifests:
        annotations = obj.get("metadata", {}).get("annotations") or {}
        declared = EXTRA_LIMITS if kind == "limits" and EXTRA_LIMITS in annotations else EXTRA_REQUESTS
        for resource, amount in extra_requests(obj, declared).items():
            out[resource] += amount
        if obj["kind"] not in WORKLOADS:
            continue
        replicas = obj["spec"].get("replicas", 1)
        for resource, amount in pod_requests(obj["spec"]["template"]["spec"], kind).items():
            out[resource] += amount * replicas
    for resource, amount in (extra or {}).items():
        out[resource] += amount
    return out


def free(nodes: list[dict], pods: list[dict]) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Allocatable of schedulable nodes, and what pods not ours (`is_ours`) already request."""
    allocatable = {"cpu": Decimal(0), "memory": Decimal(0)}
    for node in nodes:
        if node.get("spec", {}).get("unschedulable"):
            continue
        for resource in allocatable:
            allocatable[resource] += quantity(node.get("status", {}).get("allocatable", {}).get(resource, "0"))
    used = {"cpu": Decimal(0), "memory": Decimal(0)}
    for pod in pods:
        if is_ours(pod):
            continue
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for resource, amount in pod_requests(pod.get("spec", {})).items():
            used[resource] += amount
    return allocatable, used


def check(want: dict[str, Decimal], allocatable: dict[str, Decimal], used: dict[str, Decimal], inventory: Inventory) -> None:
    short = [r for r in ("cpu", "memory") if want[r] > allocatable[r] - used[r]]
    if not short:
        return
    raise DatameshError(
        f"the platform requests {show(want)} but the cluster's nodes have {show(allocatable)} allocatable, "
        f"of which other pods already request {show(used)}, so {' and '.join(short)} will not fit; "
        f"give the cluster more resources or lower resources.* in {inventory.path.name}."
    )


def check_limits(limits: dict[str, Decimal], allocatable: dict[str, Decimal], inventory: Inventory) -> str | None:
    """A warning sentence when the limits add up to more than the nodes have, else None."""
    over = [r for r in ("memory", "cpu") if limits[r] > allocatable[r]]  # the graver risk first
    if not over:
        return None
    risks = {"memory": "memory can run out and the kernel then kills containers",
             "cpu": "containers get less CPU than their limits allow"}
    return (
        f"the platform's limits add up to {show(limits)}, more than the {show(allocatable)} the cluster's nodes have "
        f"allocatable, so it starts (its requests fit) but under load {' and '.join(risks[r] for r in over)}; "
        f"give the cluster more resources, or lower resources.*.limits in {inventory.path.name}."
    )


def preflight(cluster: Cluster, manifests: list[dict], inventory: Inventory,
              warn: Callable[[str], None] | None = None) -> None:
    """Refuse when the requests do not fit; `warn` hears when the limits exceed the nodes."""
    nodes = cluster.nodes()
    if not nodes:
        raise DatameshError(f"the cluster at {cluster.server} has no nodes to run the platform on: {cluster.hint}.")
    allocatable, used = free(nodes, cluster.list("v1", "Pod"))
    check(requested(manifests), allocatable, used, inventory)
    warning = check_limits(requested(manifests, kind="limits"), allocatable, inventory)
    if warning and warn:
        warn(warning)


def show(amounts: dict[str, Decimal]) -> str:
    cpu = amounts["cpu"].normalize()
    memory = amounts["memory"] / Decimal(2**30)
    return f"{cpu:f} CPU and {memory:.1f} GiB memory"
