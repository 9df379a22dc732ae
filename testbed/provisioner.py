"""The cluster testbed's PersistentVolume provisioner: there is no storage driver, so a default
StorageClass "standard" (provisioner datamesh.local/testbed) and a small loop (its own process,
`python -m testbed.cluster provision`) that creates one hostPath PV, pre-bound by claimRef, for
each pending PVC of that class; the PV controller in kube-controller-manager binds them as usual.
A released PV of that class is deleted (reclaimPolicy Delete), like a real provisioner does.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import yaml

from testbed.common import REPO, TestbedError, logger, pid_alive, runs_from, stop_process

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


class Api:
    """A minimal Kubernetes API client (stdlib only) from the testbed kubeconfig."""

    USER_AGENT = "datamesh-testbed-provisioner"

    def __init__(self, kubeconfig: Path):
        cfg = yaml.safe_load(kubeconfig.read_text())
        context = _named(cfg["contexts"], cfg["current-context"])["context"]
        cluster = _named(cfg["clusters"], context["cluster"])["cluster"]
        user = _named(cfg["users"], context["user"])["user"]
        url = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port, self.scheme = url.hostname, url.port, url.scheme
        self.ssl = None
        if self.scheme == "https":
            self.ssl = ssl.create_default_context(cafile=_file(cluster, "certificate-authority"))
            if "client-certificate" in user or "client-certificate-data" in user:
                self.ssl.load_cert_chain(_file(user, "client-certificate"), _file(user, "client-key"))

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.ssl, timeout=10)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers={
                "Accept": "application/json", "Content-Type": "application/json",
                "User-Agent": self.USER_AGENT,
            })
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data) if data else {}
        finally:
            conn.close()

    def items(self, path: str) -> list[dict]:
        status, body = self.call("GET", path)
        if status != 200:
            raise TestbedError(f"GET {path}: HTTP {status} {body.get('message', '')}")
        return body["items"]


def _named(entries: list[dict], name: str) -> dict:
    return next(e for e in entries if e["name"] == name)


def _file(section: dict, key: str) -> str:
    """A kubeconfig credential as a file path (inline *-data is written to a private temp file)."""
    if key in section:
        return section[key]
    fd, path = tempfile.mkstemp(prefix="testbed-cred-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64decode(section[f"{key}-data"]))
    return path


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


def provision_forever(kubeconfig: Path, interval: float = 0.5) -> None:
    """The provisioner loop run by `up`; ends on SIGTERM or when the cluster is deleted."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    api = Api(kubeconfig)
    while kubeconfig.exists():
        try:
            for action in provision_once(api):
                log(action)
        except (OSError, http.client.HTTPException, ValueError, KeyError, TestbedError) as exc:
            log(f"provisioner: {exc}")
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
