"""Pure helpers the roles' render functions share: labels, metadata and the static files."""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

import yaml

from datamesh import ROOT

FILES = ROOT / "files"
PART_OF = "datamesh"
# Annotations a role sets for `invoke status`: a sentence users should read about the object
# (e.g. an archived upstream), and the path a NodePort Service's web page lives under.
NOTICE = "datamesh.io/notice"
URL_PATH = "datamesh.io/url-path"


def labels(component: str, name: str | None = None) -> dict[str, str]:
    """The labels every object carries; `down` deletes only what has them."""
    out = {
        "app.kubernetes.io/managed-by": "datamesh",
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": component,
    }
    if name:
        out["app.kubernetes.io/name"] = name
    return out


def selector(name: str) -> dict[str, str]:
    """Pod selector of a workload: stable for its lifetime, so never includes mutable labels."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}


def metadata(component: str, name: str, namespace: str | None = None, **extra: Any) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {**labels(component, name), **extra.pop("labels", {})}
    meta.update(extra)
    return meta


def service(component: str, name: str, namespace: str, port_name: str, port: int,
            node_port: int | None = None, app: str | None = None) -> dict:
    """A Service with one TCP port onto the named container port of workload `app` (default: `name`).

    With `node_port` it is a NodePort Service, reachable from outside the cluster on that port.
    """
    spec_port = {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
    if node_port:
        spec_port["nodePort"] = node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(component, name, namespace),
        "spec": {"type": "NodePort" if node_port else "ClusterIP", "selector": selector(app or name), "ports": [spec_port]},
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
