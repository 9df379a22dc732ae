"""The cluster testbed's PersistentVolume provisioner: there is no storage driver, so a default
StorageClass "standard" (provisioner datamesh.local/testbed) and a small loop (its own process,
`python -m testbed.cluster provision`) that creates one hostPath PV, pre-bound by claimRef, for
each pending PVC of that class; the PV controller in kube-controller-manager binds them as usual.
A released PV of that class is deleted (reclaimPolicy Delete), like a real provisioner does.
The same loop runs the joined testbed's link step (testbed/links.py): one background process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from testbed.common import REPO, TestbedError, logger, pid_alive, runs_from, stop_process
from testbed.kubeapi import Api

STORAGE_CLASS = "standard"
PROVISIONER = "datamesh.local/testbed"
MARKER = "testbed.cluster provision"  # in the provisioner's command line

log = logger("testbed")


def storage_class_manifest() -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def provision_once(api: Api) -> list[str]:
    """Create a hostPath PV for each pending PVC of our StorageClass; delete released PVs of ours."""
    actions = []
    classes = {
        sc["metadata"]["name"]: sc
        for sc in api.items("/apis/storage.k8s.io/v1/storageclasses")
        if sc.get("provisioner") == PROVISIONER
    }
    pvs = api.items("/api/v1/persistentvolumes")
    existing = {pv["metadata"]["name"] for pv in pvs}
    for pvc in api.items("/api/v1/persistentvolumeclaims"):
        meta, spec = pvc["metadata"], pvc["spec"]
        sc = classes.get(spec.get("storageClassName") or "")
        name = f"pvc-{meta['uid']}"
        if not sc or spec.get("volumeName") or pvc.get("status", {}).get("phase") != "Pending" or name in existing:
            continue
        selected = meta.get("annotations", {}).get("volume.kubernetes.io/selected-node")
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not selected:
            continue
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "volumeMode": spec.get("volumeMode") or "Filesystem",
                "storageClassName": sc["metadata"]["name"],
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "claimRef": {
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
                },
                "hostPath": {"path": f"/var/lib/datamesh-testbed/{name}", "type": ""},
            },
        }
        status, body = api.call("POST", "/api/v1/persistentvolumes", pv)
        if status not in (201, 409):
            raise TestbedError(f"creating PV {name}: HTTP {status} {body.get('message', '')}")
        actions.append(f"created {name} for {meta['namespace']}/{meta['name']}")
    for pv in pvs:
        ours = pv["metadata"].get("annotations", {}).get("pv.kubernetes.io/provisioned-by") == PROVISIONER
        released = pv.get("status", {}).get("phase") in ("Released", "Failed")
        if ours and released and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            api.call("DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
            actions.append(f"deleted {pv['metadata']['name']}")
    return actions


def provision_forever(kubeconfig: Path, steps: list[Callable[[Api], list[str]]] | None = None,
                      interval: float = 0.5) -> None:
    """The loop run by `up`: each step (default: provision_once) every `interval` seconds, each
    logging its actions; a failing step is logged and does not stop the others. Ends on SIGTERM
    or when the cluster is deleted."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    api = Api(kubeconfig)
    steps = steps or [provision_once]
    while kubeconfig.exists():
        for step in steps:
            try:
                for action in step(api):
                    log(action)
            except Exception as exc:
                log(f"{step.__module__.rpartition('.')[2]}: {type(exc).__name__}: {exc}")
        time.sleep(interval)


# ---------------------------------------------------------------- its process


def start(pid_file: Path, log_file: Path, env: dict[str, str]) -> None:
    """Start the loop as a process of its own (`python -m testbed.cluster provision`), its pid in pid_file."""
    stop(pid_file)
    with open(log_file, "a") as logfile:
        proc = subprocess.Popen(
            [sys.executable, "-m", "testbed.cluster", "provision"],
            stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=REPO,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path]), **env},
        )
    pid_file.write_text(str(proc.pid))


def pid(pid_file: Path) -> int | None:
    """The provisioner's pid while it runs (checked by command line, not just by number)."""
    try:
        found = int(pid_file.read_text())
    except (OSError, ValueError):
        return None
    return found if pid_alive(found) and runs_from(found, MARKER) else None


def stop(pid_file: Path) -> None:
    found = pid(pid_file)
    if found:
        stop_process(found)
    pid_file.unlink(missing_ok=True)
