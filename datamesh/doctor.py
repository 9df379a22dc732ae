"""`invoke doctor`, also the start of `invoke up`: the failures users of local platforms meet most,
found before anything is applied, one line each with the fix.

    ✓ context: kube context kind-datamesh at https://127.0.0.1:6443 (~/.kube/config)
    ✗ nodeports: port 30081 (nodeports.trino) on localhost is taken by python3 (pid 4711: ...); stop it, or ...

Checks: the kube context and its server, the API answering, the nodes' allocatable CPU and memory
against the selected components' requests (and limits), the nodes' architectures against the
images' (files/image-architectures.yml), the NodePorts free on the NodePort host or held by our own
Services, and free disk where the cluster reports it. ✗ stops `up`; ⚠ only informs.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Callable

import yaml

from datamesh import budget
from datamesh.cluster import Cluster
from datamesh.errors import DatameshError, shown
from datamesh.inventory import Inventory
from datamesh.kube import quantity, ref
from datamesh.manifests import FILES, is_ours

MARKS = {"ok": "✓", "warn": "⚠", "fail": "✗", "skip": "–"}
ARCHITECTURES_FILE = FILES / "image-architectures.yml"
HEADROOM = Decimal(10 * 2**30)  # disk beyond the volumes: images (a few GiB) and logs


@dataclass
class Finding:
    check: str
    status: str   # ok, warn, fail, or skip (the cluster does not report it)
    message: str
    fix: str = ""

    def line(self) -> str:
        return f"{MARKS[self.status]} {self.check}: {self.message}" + (f"; {self.fix}" if self.fix else "")


def run(inventory: Inventory, manifests: list[dict], say: Callable[[str], None], cluster: Cluster | None = None,
        report_json: Path | None = None) -> list[Finding]:
    """Every check, said one line each, and written as JSON when asked; the findings."""
    findings = examine(inventory, manifests, cluster)
    for finding in findings:
        say(finding.line())
    if report_json:
        write_json(findings, report_json)
    return findings


def examine(inventory: Inventory, manifests: list[dict], cluster: Cluster | None = None) -> list[Finding]:
    """Every check, in order; a context or API that fails ends the list (nothing else can be asked)."""
    try:
        cluster = cluster or Cluster(inventory)
    except DatameshError as exc:
        return [Finding("context", "fail", str(exc))]
    findings = [Finding("context", "ok", f"kube context {cluster.context} at {cluster.server} ({shown(cluster.kubeconfig)})")]
    try:
        version = cluster.version or cluster.ping()
    except DatameshError as exc:
        return findings + [Finding("api", "fail", str(exc))]
    findings.append(Finding("api", "ok", f"the API server answers (Kubernetes {version})"))
    nodes = cluster.nodes()
    if not nodes:
        return findings + [Finding("resources", "fail", f"the cluster at {cluster.server} has no nodes", cluster.hint)]
    findings.append(resources(inventory, manifests, nodes, cluster.list("v1", "Pod")))
    findings.append(architectures(inventory, manifests, nodes))
    findings.append(nodeports(inventory, manifests, cluster.list("v1", "Service")))
    findings.append(disk(inventory, manifests, nodes, cluster))
    return findings


def resources(inventory: Inventory, manifests: list[dict], nodes: list[dict], pods: list[dict]) -> Finding:
    allocatable, used = budget.free(nodes, pods)
    want = budget.requested(manifests)
    try:
        budget.check(want, allocatable, used, inventory)
    except DatameshError as exc:
        return Finding("resources", "fail", str(exc))
    warning = budget.check_limits(budget.requested(manifests, kind="limits"), allocatable, inventory)
    if warning:
        return Finding("resources", "warn", warning)
    free = {r: allocatable[r] - used[r] for r in allocatable}
    return Finding("resources", "ok", f"the components request {budget.show(want)}; the nodes have {budget.show(free)} free")


def known_architectures(path: Path = ARCHITECTURES_FILE) -> dict[str, dict]:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


def images_used(inventory: Inventory, manifests: list[dict]) -> dict[str, str]:
    """Each image the manifests run or name (KubeSpawner's user images sit in a ConfigMap) -> its inventory key."""
    text = json.dumps(manifests)
    keys = {image: f"images.{key}" for key, image in inventory["images"].items() if image and f'"{image}' in text}
    for obj in manifests:
        spec = obj.get("spec", {}).get("jobTemplate", {}).get("spec", obj.get("spec", {}))
        pod = spec.get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            keys.setdefault(container["image"], f"the image of {ref(obj)}")
    return keys


def node_architectures(nodes: list[dict]) -> set[str]:
    return {(n["metadata"].get("labels") or {}).get("kubernetes.io/arch")
            or n.get("status", {}).get("nodeInfo", {}).get("architecture", "") for n in nodes} - {""}


def architectures(inventory: Inventory, manifests: list[dict], nodes: list[dict],
                  known: dict[str, dict] | None = None) -> Finding:
    known = known_architectures() if known is None else known
    archs = node_architectures(nodes)
    if not archs:
        return Finding("architectures", "skip", "the nodes report no architecture (label kubernetes.io/arch)")
    images = images_used(inventory, manifests)
    unknown = sorted(i for i in images if i not in known)
    short = [(image, key, known[image]["architectures"]) for image, key in sorted(images.items())
             if image in known and not known[image].get("local") and not archs <= set(known[image]["architectures"])]
    if short:
        image, key, has = short[0]
        return Finding("architectures", "warn",
                       f"{image} ({key}) is published for {', '.join(has)} only and the nodes are {', '.join(sorted(archs))}: "
                       f"it runs under emulation, slowly, or not at all" + (f" (and {len(short) - 1} more)" if len(short) > 1 else ""),
                       f"pin a multi-architecture tag in {key} of {inventory.path.name} (see {shown(ARCHITECTURES_FILE)})")
    note = f"; not in {shown(ARCHITECTURES_FILE)}, so not checked: {', '.join(unknown)}" if unknown else ""
    return Finding("architectures", "ok", f"{len(images) - len(unknown)} images are published for the nodes' "
                                          f"{', '.join(sorted(archs))}{note}")


def nodeports(inventory: Inventory, manifests: list[dict], services: list[dict]) -> Finding:
    """Each NodePort the selected Services use: held by that very Service, or free on the NodePort host
    (a cluster's own port mapping, `hosts.port_mappers`, may listen on it before the Service exists)."""
    names = {port: name for name, port in inventory["nodeports"].items()}
    wanted = {p["nodePort"]: ref(obj) for obj in manifests if obj["kind"] == "Service"
              for p in obj["spec"].get("ports", []) if "nodePort" in p}
    if not wanted:
        return Finding("nodeports", "ok", "the selected components publish no NodePort")
    holders = {p["nodePort"]: svc for svc in services for p in svc.get("spec", {}).get("ports", []) if p.get("nodePort")}
    where = inventory["hosts"]["address"] if inventory["hosts"]["nodeports"] == "local" else inventory["hosts"]["nodeports"]
    problems, ours = [], 0
    free = {port for port in wanted if port not in holders}
    try:
        found = held(free, inventory["hosts"]["nodeports"]) if free else {}
    except (OSError, subprocess.SubprocessError) as exc:
        return Finding("nodeports", "warn", f"cannot list the listening ports on {where} ({exc})")
    for port, service in sorted(wanted.items()):
        key = f"nodeports.{names.get(port, '?')}"
        holder = holders.get(port)
        if holder is not None and (not is_ours(holder) or ref(holder) != service):
            problems.append(f"port {port} ({key}) is held by {ref(holder)}, "
                            + ("another of datamesh's" if is_ours(holder) else "which is not datamesh's"))
        elif holder is not None:
            ours += 1
        elif port in found and not found[port].named(inventory["hosts"]["port_mappers"]):
            problems.append(f"port {port} ({key}) on {where} is taken by {found[port].shown()}")
    if problems:
        return Finding("nodeports", "fail", "; ".join(problems),
                       f"stop what holds it, or set those keys in {inventory.path.name} to free ports from 30000 to 32767")
    ports = sorted(wanted)
    span = f"{ports[0]}–{ports[-1]}" if len(ports) > 1 else str(ports[0])
    if ours == len(ports):
        return Finding("nodeports", "ok", f"{span}: all held by the platform's own Services")
    return Finding("nodeports", "ok", f"{span}: free on {where}" if not ours else
                   f"{span}: {ours} held by the platform's own Services, the rest free on {where}")


def held(ports: set[int], nodeports: str) -> dict:
    """The programs listening on `ports` of the NodePort host (datamesh/listeners.py, loaded only when asked)."""
    from datamesh import listeners

    return listeners.listeners(ports, nodeports)


def volumes_requested(manifests: list[dict]) -> Decimal:
    total = Decimal(0)
    for obj in manifests:
        if obj["kind"] == "PersistentVolumeClaim":
            total += quantity(obj["spec"]["resources"]["requests"]["storage"])
        for claim in obj.get("spec", {}).get("volumeClaimTemplates") or []:
            total += quantity(claim["spec"]["resources"]["requests"]["storage"]) * obj["spec"].get("replicas", 1)
    return total


def disk(inventory: Inventory, manifests: list[dict], nodes: list[dict], cluster: Cluster) -> Finding:
    """Free disk from each node's kubelet (stats summary), else its DiskPressure condition and allocatable
    ephemeral storage; against the volumes requested plus room for images and logs."""
    need = volumes_requested(manifests)
    free, sources = Decimal(0), []
    for node in nodes:
        name = node["metadata"]["name"]
        if any(c.get("type") == "DiskPressure" and c.get("status") == "True" for c in node.get("status", {}).get("conditions", [])):
            return Finding("disk", "fail", f"node {name} reports DiskPressure: the kubelet evicts pods there",
                           "free disk space in the cluster's VM or raise its disk size")
        stats = cluster.node_stats(name)
        available = ((stats or {}).get("node") or {}).get("fs", {}).get("availableBytes")
        if available is not None:
            free += Decimal(available)
            sources.append(f"{name}: {gib(Decimal(available))} free")
            continue
        storage = node.get("status", {}).get("allocatable", {}).get("ephemeral-storage")
        if storage:
            free += quantity(storage)
            sources.append(f"{name}: {gib(quantity(storage))} allocatable, usage not reported")
    if not sources:
        return Finding("disk", "skip", "the cluster reports no disk for its nodes")
    said = f"the volumes request {gib(need)}; " + ", ".join(sources)
    if free < need:
        return Finding("disk", "fail", said, f"give the cluster's VM more disk, or lower storage.* in {inventory.path.name}")
    if free < need + HEADROOM:
        return Finding("disk", "warn", said + f", leaving less than {gib(HEADROOM)} for images and logs",
                       "give the cluster's VM more disk")
    return Finding("disk", "ok", said)


def gib(amount: Decimal) -> str:
    return f"{amount / Decimal(2**30):.1f} GiB"


def failed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "fail"]


def write_json(findings: list[Finding], path: Path) -> None:
    document = {"ok": not failed(findings), "checks": [asdict(f) for f in findings]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
