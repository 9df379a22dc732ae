"""The checks every role gets, beside its own roles/<name>/verify.py: its pods Ready and not
restarting in a loop, its volumes Bound, its Services with a ready endpoint, and every Secret key
it renders or reads present and non-empty (these need only the Kubernetes API: `invoke up` runs
them after each role's wait), and each NodePort it publishes reachable from the user's machine. Parametrized by `role`
(datamesh/fixtures.py) over the selected roles; each reads every kind once per session.
"""

from __future__ import annotations

import base64
import time

import pytest

from datamesh import kube
from datamesh.manifests import COMPONENT, OURS

NEXT_STEP = "run `invoke status` to see what is not ready and `kubectl describe` it for its events, then `invoke up`"
WORKLOADS = ("Deployment", "StatefulSet", "Job")


@pytest.fixture(scope="session")
def listed(cluster):
    """kind -> the live objects of ours of that kind, listed once across the cluster."""
    kinds = {"Pod": "v1", "PersistentVolumeClaim": "v1", "Secret": "v1", "EndpointSlice": "discovery.k8s.io/v1"}
    cache: dict[str, list[dict]] = {}

    def get(kind: str) -> list[dict]:
        if kind not in cache:
            labels = None if kind == "EndpointSlice" else OURS  # the controller labels slices by service only
            cache[kind] = cluster.list(kinds[kind], kind, labels=labels)
        return cache[kind]
    return get


def of_role(objects: list[dict], role: str) -> list[dict]:
    return [o for o in objects if (o["metadata"].get("labels") or {}).get(COMPONENT) == role]


def pod_specs(rendered: list[dict]) -> list[tuple[dict, dict]]:
    """(workload, its pod spec) for each workload the role renders."""
    return [(obj, obj["spec"]["template"]["spec"]) for obj in rendered if obj["kind"] in WORKLOADS]


@pytest.mark.api
def publishes_nodeports(rendered: list[dict]) -> bool:
    return any("nodePort" in p for o in rendered if o["kind"] == "Service" for p in o["spec"]["ports"])


def keeps_volumes(rendered: list[dict]) -> bool:
    return any(o["kind"] == "PersistentVolumeClaim" or o.get("spec", {}).get("volumeClaimTemplates") for o in rendered)


def has_services(rendered: list[dict]) -> bool:
    return any(o["kind"] == "Service" and o["spec"].get("selector") for o in rendered)


@pytest.mark.applies.with_args(lambda rendered: bool(pod_specs(rendered)))
def test_pods_are_ready_and_not_restarting_in_a_loop(role, rendered, listed):
    pods = [p for p in of_role(listed("Pod"), role) if not p["metadata"].get("deletionTimestamp")]
    assert pods, f"{role} has no pods although it renders workloads: run `invoke up --only {role}` and watch its events"
    now = time.time()
    for pod in pods:
        where = f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']}"
        phase = (pod.get("status") or {}).get("phase")
        loop = kube.restart_loop(pod, now)
        assert loop is None, f"{where}: {loop}; read its log with `kubectl logs --previous`"
        assert phase == "Succeeded" or kube.ready_since(pod) is not None, f"{where} is {phase or 'unknown'}, not Ready"


@pytest.mark.api
@pytest.mark.applies.with_args(keeps_volumes)
def test_volumes_are_bound(role, listed):
    claims = of_role(listed("PersistentVolumeClaim"), role)
    assert claims, f"{role} renders volumes but none of its PersistentVolumeClaims exists"
    for claim in claims:
        phase = (claim.get("status") or {}).get("phase")
        assert phase == "Bound", (f"PersistentVolumeClaim {claim['metadata']['namespace']}/{claim['metadata']['name']} "
                                  f"is {phase or 'without a phase'}, not Bound: is there a StorageClass that provisions?")


@pytest.mark.api
@pytest.mark.applies.with_args(has_services)
def test_services_have_a_ready_endpoint(role, rendered, listed):
    for service in (o for o in rendered if o["kind"] == "Service" and o["spec"].get("selector")):
        meta = service["metadata"]
        slices = [s for s in listed("EndpointSlice") if s["metadata"].get("namespace") == meta["namespace"]
                  and (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == meta["name"]]
        ready = [e for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")]
        assert ready, f"Service {meta['namespace']}/{meta['name']} has no ready endpoint: no Ready pod matches its selector"


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


@pytest.mark.api
@pytest.mark.applies.with_args(lambda rendered: bool(secret_keys(rendered)))
def test_every_secret_it_renders_or_reads_holds_its_keys(role, rendered, listed, cluster):
    wanted = secret_keys(rendered)
    live = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in listed("Secret")}
    for (namespace, name), keys in sorted(wanted.items()):
        secret = live.get((namespace, name)) or cluster.get(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": namespace, "name": name}})
        assert secret is not None, f"Secret {namespace}/{name} is missing: run `invoke up` (the credentials role makes it)"
        data = secret.get("data") or {}
        empty = sorted(k for k in keys if not base64.b64decode(data.get(k) or "").strip())
        assert not empty, f"Secret {namespace}/{name} has no value for {', '.join(empty)}: run `invoke up` to fill it"


@pytest.mark.applies.with_args(publishes_nodeports)
def test_its_nodeports_are_reachable_from_the_user_machine(role, rendered, host, nodeports, not_run):
    ports = [p["nodePort"] for o in rendered if o["kind"] == "Service" for p in o["spec"]["ports"] if "nodePort" in p]
    names = {port: name for name, port in nodeports.ports.items()}
    for port in ports:
        not_run(names.get(port, role))
        assert host.addr(nodeports.address).port(port).is_reachable, (
            f"nothing accepts connections on {nodeports.address}:{port} from {nodeports.where}: on kind or k3d the "
            "cluster must map the NodePorts (`invoke cluster-config`); elsewhere check hosts.address")
