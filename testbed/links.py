"""The joined testbed's links: the KWOK objects that make a fake platform pod stand for the
native program serving its Services, and the loop step that keeps them (testbed/joined.py).

For each platform pod (labelled part-of=datamesh, in the joined namespaces) three KWOK objects
named like the pod: a PortForward sending each container port a Service targets to the program
serving that Service (HOSTS[service name]:targetPort); a Logs pointing at a CRI copy of that
program's log (testbed/crilogs.py), or at a line saying why there is none (Grafana, Job pods);
an Exec running `kubectl exec` commands on the host in the program's working directory. They
carry managed-by=datamesh-testbed and never part-of=datamesh: the tool never counts them as its
own. link_once() runs in the cluster's background loop (testbed/provisioner.py) every half
second. What this changes from a real kubelet: testbed/joined.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import urllib.parse
from pathlib import Path

from datamesh.manifests import MANAGED_BY, NAME, OURS, PART_OF, PLATFORM
from testbed import cluster, crilogs
from testbed.addresses import HOSTS
from testbed.kubeapi import Api

MANAGER = "datamesh-testbed"
MANAGED = {MANAGED_BY: MANAGER}
POD_UID = "testbed.datamesh.io/pod-uid"
KWOK_API = "/apis/kwok.x-k8s.io/v1alpha1"
KINDS = {"PortForward": "portforwards", "Logs": "logs", "Exec": "execs"}
NOT_RUN = {"grafana": "Grafana is AGPL"}


def joined_dir() -> Path:
    """Under the cluster's folder, so `cluster down` removes it with the cluster."""
    return cluster.cluster_dir() / "joined"


def state_file() -> Path:
    """Written by `joined up`: namespaces, native processes (Service names, log, folder), repo."""
    return joined_dir() / "joined.json"


@contextlib.contextmanager
def locked():
    """One writer of the KWOK objects at a time: the loop's pass, or `joined down`."""
    joined_dir().mkdir(parents=True, exist_ok=True)
    with open(joined_dir() / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


# ------------------------------------------------------------------ what the cluster should hold


def desired(pods: list[dict], services: list[dict], state: dict, logs_dir: Path) -> tuple[list[dict], dict]:
    """(KWOK objects, CRI log files: path -> ("copy", native log) or ("note", line)) for the
    platform pods of the state's namespaces and the Services in front of them."""
    host_process = {h: name for name, p in state["processes"].items() for h in p["hosts"]}
    objects: list[dict] = []
    files: dict[Path, tuple[str, str]] = {}
    for pod in pods:
        meta = pod["metadata"]
        if meta["namespace"] not in state["namespaces"] or (meta.get("labels") or {}).get(PART_OF) != PLATFORM:
            continue
        selecting = [s for s in services if _selects(s, pod)]
        served = [_fqdn(s) for s in selecting if _fqdn(s) in host_process]
        process = state["processes"][host_process[served[0]]] if served else None
        forwards = _forwards(pod, selecting, served, host_process)
        if forwards:
            objects.append(_kwok("PortForward", pod, {"forwards": forwards}))
        if process:
            logs_file = logs_dir / f"{host_process[served[0]]}.log"
            files[logs_file] = ("copy", process["log"])
        else:
            logs_file = logs_dir / "notes" / f"{meta['namespace']}.{meta['name']}.log"
            files[logs_file] = ("note", _note(pod))
        objects.append(_kwok("Logs", pod, {"logs": [{"logsFile": str(logs_file), "follow": True}]}))
        workdir = process["workdir"] if process else state["repo"]
        envs = [{"name": "HOSTNAME", "value": meta["name"]}]
        objects.append(_kwok("Exec", pod, {"execs": [{"local": {"workDir": workdir, "envs": envs}}]}))
    return objects, files


def _fqdn(service: dict) -> str:
    return f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"


def _selects(service: dict, pod: dict) -> bool:
    selector = service.get("spec", {}).get("selector") or {}
    labels = pod["metadata"].get("labels") or {}
    return service["metadata"]["namespace"] == pod["metadata"]["namespace"] and bool(selector) \
        and all(labels.get(k) == v for k, v in selector.items())


def _forwards(pod: dict, selecting: list[dict], served: list[str], host_process: dict) -> list[dict]:
    """Each container port a Service targets -> the program's address: the Service's own when
    the testbed serves that name, else the pod's first served one (minio-console: the minio pod)."""
    named = {p["name"]: p["containerPort"] for c in pod["spec"].get("containers") or []
             for p in c.get("ports") or [] if "name" in p}
    forwards, seen = [], set()
    for service in selecting:
        host = _fqdn(service) if _fqdn(service) in host_process else (served[0] if served else None)
        for port in service["spec"].get("ports") or [] if host else []:
            target = port.get("targetPort", port["port"])
            target = named.get(target) if isinstance(target, str) else target
            if target and target not in seen:
                seen.add(target)
                forwards.append({"ports": [target], "target": {"address": HOSTS[host], "port": target}})
    return forwards


def _note(pod: dict) -> str:
    labels = pod["metadata"].get("labels") or {}
    owners = {o["kind"]: o["name"] for o in pod["metadata"].get("ownerReferences") or []}
    job = labels.get("job-name") or owners.get("Job")
    if job:
        return (f"the service testbed runs no Job pods (job {job}): it does the platform's one-off work "
                "itself when it starts (see testbed/services.py)")
    app = labels.get(NAME) or pod["metadata"]["name"]
    why = f"{NOT_RUN[app]}; " if app in NOT_RUN else ""
    return f"the service testbed does not run {app} ({why}see testbed/services.py)"


def _kwok(kind: str, pod: dict, spec: dict) -> dict:
    meta = pod["metadata"]
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": kind,
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": dict(MANAGED),
                         "annotations": {POD_UID: meta.get("uid", "")}},
            "spec": spec}


# ------------------------------------------------------------------ the loop's step


def link_once(api: Api) -> list[str]:
    """One reconcile pass: create missing objects, replace changed ones, delete those no pod
    needs; append the programs' new log lines to their CRI copies. Nothing without the state file."""
    if not state_file().exists():
        return []
    with locked():
        if not state_file().exists():
            return []
        want, have, files = survey(api, json.loads(state_file().read_text()))
        actions = []
        for key, obj in want.items():
            live = have.pop(key, None)
            if live is None:
                api.must("POST", _path(obj, collection=True), obj)
                actions.append(f"linked {ref(obj)}")
            elif not _same(obj, live):
                obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                api.must("PUT", _path(obj), obj)
                actions.append(f"relinked {ref(obj)}")
        for live in have.values():
            api.must("DELETE", _path(live), ok=(200, 202, 404))
            actions.append(f"unlinked {ref(live)} (its pod is gone)")
        crilogs.sync(files, joined_dir() / "logs")
        return actions


def survey(api: Api, state: dict) -> tuple[dict, dict, dict]:
    """(desired objects, live testbed-managed ones, both by (kind, namespace, name); CRI files)."""
    ours = urllib.parse.quote(OURS)
    pods = api.items(f"/api/v1/pods?labelSelector={ours}")
    services = api.items(f"/api/v1/services?labelSelector={ours}")
    objects, files = desired(pods, services, state, joined_dir() / "logs")
    have = {}
    managed = urllib.parse.quote(f"{MANAGED_BY}={MANAGER}")
    for kind, plural in KINDS.items():
        for obj in api.items(f"{KWOK_API}/{plural}?labelSelector={managed}"):
            obj["kind"] = kind
            have[_key(obj)] = obj
    return {_key(o): o for o in objects}, have, files


def _key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]


def ref(obj: dict) -> str:
    return f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}"


def _path(obj: dict, collection: bool = False) -> str:
    meta = obj["metadata"]
    base = f"{KWOK_API}/namespaces/{meta['namespace']}/{KINDS[obj['kind']]}"
    return base if collection else f"{base}/{meta['name']}"


def _same(want: dict, live: dict) -> bool:
    meta = live["metadata"]
    return want["spec"] == live.get("spec") and all(
        (meta.get(field) or {}).get(k) == v for field in ("labels", "annotations")
        for k, v in want["metadata"][field].items())


def missing(want: dict, have: dict) -> list[str]:
    """The desired objects that are absent or differ from what the cluster holds."""
    return [ref(o) for k, o in want.items() if k not in have or not _same(o, have[k])]
