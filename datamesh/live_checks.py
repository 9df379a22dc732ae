"""The checks of a role's live objects that need only the Kubernetes API: its namespaces Active, its
pods Ready and not restarting in a loop, its volumes Bound, its Services with a ready endpoint, and
every Secret key it renders or reads filled.

Written once, as plain functions that return None or the failure's sentence: `invoke up` runs them
after each role's wait in its own process without pytest (importing pytest alone costs more than a
whole no-op run's requests), and `invoke verify` runs the same functions as the common pytest checks
(datamesh/common_checks.py). Each reads the live objects from a `Listing`: one LIST per kind, kept
until the run writes again.
"""

from __future__ import annotations

import base64
import time
from typing import Callable

from datamesh import kube
from datamesh.manifests import COMPONENT, OURS

NEXT_STEP = "run `invoke status` to see what is not ready and `kubectl describe` it for its events, then `invoke up`"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
LISTED = {"Pod": "v1", "PersistentVolumeClaim": "v1", "Secret": "v1", "Namespace": "v1",
          "EndpointSlice": "discovery.k8s.io/v1"}


class Listing:
    """kind -> the live objects of ours of that kind across the cluster, listed once until `clear()`."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.cache: dict[str, list[dict]] = {}

    def __call__(self, kind: str) -> list[dict]:
        if kind not in self.cache:
            labels = None if kind == "EndpointSlice" else OURS  # the controller labels slices by service only
            self.cache[kind] = self.cluster.list(LISTED[kind], kind, labels=labels)
        return self.cache[kind]

    def clear(self) -> None:
        self.cache.clear()

    def seed(self, listed: dict[str, list[dict]]) -> None:
        """Take kinds someone just listed the same way (ours, across the cluster) instead of asking again."""
        self.cache.update({kind: objects for kind, objects in listed.items() if kind in LISTED and kind != "EndpointSlice"})


def of_role(objects: list[dict], role: str) -> list[dict]:
    return [o for o in objects if (o["metadata"].get("labels") or {}).get(COMPONENT) == role]


def pod_specs(rendered: list[dict]) -> list[tuple[dict, dict]]:
    """(workload, its pod spec) for each workload the role renders."""
    return [(obj, obj["spec"]["template"]["spec"]) for obj in rendered if obj["kind"] in WORKLOADS]


def renders_namespaces(rendered: list[dict]) -> bool:
    return any(o["kind"] == "Namespace" for o in rendered)


def keeps_volumes(rendered: list[dict]) -> bool:
    return any(o["kind"] == "PersistentVolumeClaim" or o.get("spec", {}).get("volumeClaimTemplates") for o in rendered)


def has_services(rendered: list[dict]) -> bool:
    return any(o["kind"] == "Service" and o["spec"].get("selector") for o in rendered)


def has_pods(rendered: list[dict]) -> bool:
    return bool(pod_specs(rendered))


def has_secret_keys(rendered: list[dict]) -> bool:
    return bool(secret_keys(rendered))


def secret_keys(rendered: list[dict]) -> dict[tuple[str, str], set[str]]:
    """(namespace, Secret) -> the keys the role renders in it or its pods read from it (non-optional)."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for obj in rendered:
        if obj["kind"] == "Secret":
            wanted.setdefault((obj["metadata"]["namespace"], obj["metadata"]["name"]), set()).update(obj.get("data") or {})
    for obj, spec in pod_specs(rendered):
        namespace = obj["metadata"]["namespace"]
        for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    wanted.setdefault((namespace, ref["name"]), set()).add(ref["key"])
        for volume in spec.get("volumes") or []:
            if "secret" in volume and not volume["secret"].get("optional"):
                items = {item["key"] for item in volume["secret"].get("items") or []}
                wanted.setdefault((namespace, volume["secret"]["secretName"]), set()).update(items)
    return wanted


# -- the checks: (role, rendered, listed, cluster) -> None, or what is wrong -------------------------


def namespaces_active(role: str, rendered: list[dict], listed: Listing, cluster) -> str | None:
    live = {n["metadata"]["name"]: n for n in listed("Namespace")}
    for name in sorted(o["metadata"]["name"] for o in rendered if o["kind"] == "Namespace"):
        if name not in live:
            return f"namespace {name} does not exist"
        phase = (live[name].get("status") or {}).get("phase")
        if phase != "Active":
            return f"namespace {name} is {phase}, not Active"
    return None


def pods_ready(role: str, rendered: list[dict], listed: Listing, cluster) -> str | None:
    pods = [p for p in of_role(listed("Pod"), role) if not p["metadata"].get("deletionTimestamp")]
    if not pods:
        return f"{role} has no pods although it renders workloads: run `invoke up --only {role}` and watch its events"
    now = time.time()
    for pod in pods:
        where = f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']}"
        phase = (pod.get("status") or {}).get("phase")
        loop = kube.restart_loop(pod, now)
        if loop is not None:
            return f"{where}: {loop}; read its log with `kubectl logs --previous`"
        if phase != "Succeeded" and kube.ready_since(pod) is None:
            return f"{where} is {phase or 'unknown'}, not Ready"
    return None


def volumes_bound(role: str, rendered: list[dict], listed: Listing, cluster) -> str | None:
    claims = of_role(listed("PersistentVolumeClaim"), role)
    if not claims:
        return f"{role} renders volumes but none of its PersistentVolumeClaims exists"
    for claim in claims:
        phase = (claim.get("status") or {}).get("phase")
        if phase != "Bound":
            return (f"PersistentVolumeClaim {claim['metadata']['namespace']}/{claim['metadata']['name']} "
                    f"is {phase or 'without a phase'}, not Bound: is there a StorageClass that provisions?")
    return None


def services_have_endpoints(role: str, rendered: list[dict], listed: Listing, cluster) -> str | None:
    for service in (o for o in rendered if o["kind"] == "Service" and o["spec"].get("selector")):
        meta = service["metadata"]
        slices = [s for s in listed("EndpointSlice") if s["metadata"].get("namespace") == meta["namespace"]
                  and (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == meta["name"]]
        if not any((e.get("conditions") or {}).get("ready") for s in slices for e in s.get("endpoints") or []):
            return f"Service {meta['namespace']}/{meta['name']} has no ready endpoint: no Ready pod matches its selector"
    return None


def secrets_filled(role: str, rendered: list[dict], listed: Listing, cluster) -> str | None:
    live = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in listed("Secret")}
    for (namespace, name), keys in sorted(secret_keys(rendered).items()):
        secret = live.get((namespace, name)) or cluster.get(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": namespace, "name": name}})
        if secret is None:
            return f"Secret {namespace}/{name} is missing: run `invoke up` (the credentials role makes it)"
        data = secret.get("data") or {}
        empty = sorted(k for k in keys if not base64.b64decode(data.get(k) or "").strip())
        if empty:
            return f"Secret {namespace}/{name} has no value for {', '.join(empty)}: run `invoke up` to fill it"
    return None


Check = Callable[[str, list, Listing, object], "str | None"]
# name (as `invoke verify` names the common check), whether it applies to what a role renders, the check
CHECKS: list[tuple[str, Callable[[list[dict]], bool], Check]] = [
    ("its namespaces exist and are active", renders_namespaces, namespaces_active),
    ("pods are ready and not restarting in a loop", has_pods, pods_ready),
    ("volumes are bound", keeps_volumes, volumes_bound),
    ("services have a ready endpoint", has_services, services_have_endpoints),
    ("every secret it renders or reads holds its keys", has_secret_keys, secrets_filled),
]


def run(role: str, rendered: list[dict], listed: Listing, cluster) -> list[tuple[str, str | None]]:
    """(check name, None or what is wrong) for each check that applies to the role."""
    return [(name, check(role, rendered, listed, cluster)) for name, applies, check in CHECKS if applies(rendered)]
