"""Pure helpers the roles' render functions share: labels and metadata, Services and Deployments,
in-cluster names, probes, volume claims, the config checksum, and the static files."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any

import yaml

from datamesh import ROOT

FILES = ROOT / "files"

# Our labels. The rule: ours = labelled part-of=datamesh (so are KubeSpawner's pods and volumes); managed-by decides nothing.
PLATFORM = "datamesh"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "app.kubernetes.io/component"
NAME = "app.kubernetes.io/name"
OURS = f"{PART_OF}={PLATFORM}"  # the label selector that lists what is ours
DATA_KINDS = {"PersistentVolumeClaim", "Namespace"}  # data, and what holds it: only `down --purge` removes them
# Annotations a role sets for `invoke status`: a sentence users should read about the object
# (e.g. an archived upstream), and the path a NodePort Service's web page lives under.
TRINO_USERS_SECRET, TRINO_TLS_SECRET = "trino-users", "trino-tls"  # the credentials role renders them (security.trino_auth)
NOTICE = "datamesh.io/notice"
URL_PATH = "datamesh.io/url-path"
CONFIG_CHECKSUM = "datamesh.io/config-sha256"  # see config_checksum


def labels(component: str, name: str | None = None) -> dict[str, str]:
    """The labels every object carries; `down` and pruning touch only what is ours (`is_ours`)."""
    out = {MANAGED_BY: PLATFORM, PART_OF: PLATFORM, COMPONENT: component}
    if name:
        out[NAME] = name
    return out


def is_ours(obj: dict) -> bool:
    """The one ownership test: what `down` deletes, pruning may remove and the budget does not count as others'."""
    return label(obj, PART_OF) == PLATFORM


def label(obj: dict, key: str) -> str | None:
    """One label of an object, or None (objects from the API may have no labels at all)."""
    return (obj.get("metadata", {}).get("labels") or {}).get(key)


def selector(name: str) -> dict[str, str]:
    """Pod selector of a workload: stable for its lifetime, so never includes mutable labels."""
    return {NAME: name, PART_OF: PLATFORM}


def metadata(component: str, name: str, namespace: str | None = None, **extra: Any) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {**labels(component, name), **extra.pop("labels", {})}
    meta.update(extra)
    return meta


def service_port(name: str, port: int, target: str | None = None, node_port: int | None = None) -> dict:
    """One TCP port of a Service onto the container port named `target` (default: `name`).

    With `node_port` it is also reachable from outside the cluster on that port.
    """
    entry = {"name": name, "port": port, "targetPort": target or name, "protocol": "TCP"}
    if node_port:
        entry["nodePort"] = node_port
    return entry


def service(component: str, name: str, namespace: str, *ports: dict, app: str | None = None) -> dict:
    """A Service with `ports` (see service_port) onto workload `app` (default: `name`).

    It is a NodePort Service when one of its ports has a node port, else a ClusterIP one.
    """
    node = any("nodePort" in port for port in ports)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(component, name, namespace),
        "spec": {"type": "NodePort" if node else "ClusterIP", "selector": selector(app or name), "ports": list(ports)},
    }


def fqdn(name: str, namespace: str) -> str:
    """The in-cluster name of Service `name`, which every namespace resolves (what configs use)."""
    return f"{name}.{namespace}.svc.cluster.local"


def deployment(component: str, name: str, namespace: str, pod_spec: dict, replicas: int = 1,
               strategy: dict | None = None, annotations: dict | None = None,
               pod_annotations: dict | None = None) -> dict:
    """A Deployment of `replicas` pods of `pod_spec`; `pod_annotations` (e.g. config_checksum) go on its pods."""
    template_meta: dict[str, Any] = {"labels": labels(component, name)}
    if pod_annotations:
        template_meta["annotations"] = pod_annotations
    spec: dict[str, Any] = {"replicas": replicas}
    if strategy:
        spec["strategy"] = strategy
    spec["selector"] = {"matchLabels": selector(name)}
    spec["template"] = {"metadata": template_meta, "spec": pod_spec}
    meta = metadata(component, name, namespace, **({"annotations": annotations} if annotations else {}))
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def http_probes(path: str, port: str, ready: tuple[int, int], live: tuple[int, int], timeout: int = 3) -> dict:
    """A container's readiness and liveness probes on GET `path`, every 10 s: each (initial delay, failures)."""
    probe = {"httpGet": {"path": path, "port": port}, "periodSeconds": 10, "timeoutSeconds": timeout}
    return {
        "readinessProbe": {**probe, "initialDelaySeconds": ready[0], "failureThreshold": ready[1]},
        "livenessProbe": {**probe, "initialDelaySeconds": live[0], "failureThreshold": live[1]},
    }


def pod_security(uid: int, **extra: Any) -> dict:
    """Run as the image's own non-root user, with the runtime's default seccomp profile."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid, **extra,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict:
    """No privilege escalation and no Linux capabilities."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def claim_spec(vars: dict, size: str) -> dict:
    """A ReadWriteOnce volume claim of `size` in the inventory's StorageClass (or the default one)."""
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if vars["storage"]["class"]:
        spec["storageClassName"] = vars["storage"]["class"]
    return spec


def config_checksum(*configmaps: dict) -> dict[str, str]:
    """The pod-template annotation that rolls a workload when its ConfigMaps' files change.

    A subPath mount never sees a ConfigMap update, and most programs read their config only at start.
    """
    files = sorted((key, text) for configmap in configmaps for key, text in configmap["data"].items())
    digest = hashlib.sha256("".join(f"{key}\0{text}\0" for key, text in files).encode()).hexdigest()[:16]
    return {CONFIG_CHECKSUM: digest}


def template_digest(template: dict) -> str:
    """A short hash of a Job's pod template, for its name: Jobs are immutable, so a changed template
    (script, image, env) is a new Job (the old one is pruned), an unchanged one is found again."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:8]


def proxy_env(vars: dict) -> list[dict]:
    """The usual proxy variables, in both spellings tools read, for containers that download."""
    env = []
    for key in ("http_proxy", "https_proxy", "no_proxy"):
        value = vars["proxy"][key]
        if value:
            env += [{"name": key.upper(), "value": value}, {"name": key, "value": value}]
    return env


def secret_name(service: str) -> str:
    """The Secret holding a service's credentials, rendered by the credentials role."""
    return f"{service}-credentials"


def secret_ref(secret: str, key: str) -> dict:
    return {"secretKeyRef": {"name": secret, "key": key}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def read(relative: str) -> str:
    """A file under files/, read as text."""
    return (FILES / relative).read_text()


@lru_cache(maxsize=1)
def platform() -> dict:
    """files/platform.yml: the names every role agrees on."""
    return yaml.safe_load(read("platform.yml"))


def postgres(key: str) -> dict:
    """The PostgreSQL instance of files/platform.yml with this key (sales, hive, sales-domain, ...)."""
    return next(pg for pg in platform()["postgres"] if pg["key"] == key)


class _Dumper(yaml.SafeDumper):
    """Readable YAML: block style for multi-line text, no anchors for shared dicts."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def dump_all(objects: list[dict]) -> str:
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
