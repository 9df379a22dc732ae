"""The Kubernetes API's vocabulary, without I/O: where a kind lives, how messages name an object,
the API's error answers and how a failed connection reads.

`datamesh/cluster.py` sends every request; this module only describes what it sends and gets back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API, as discovery reported it."""

    group_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = group_version_path(self.group_version)
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        return f"{base}/{quote(name, safe='')}" if name else base


def group_version_path(api_version: str) -> str:
    """`/api/v1` for the core group, `/apis/GROUP/VERSION` for the others."""
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"


class Discovery:
    """The kinds the API serves, learned one group-version at a time and kept: one request each."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], Resource] = {}
        self.discovered: set[str] = set()

    def add(self, api_version: str, answer: dict) -> None:
        """Keep a discovery answer (`{"resources": [...]}`); subresources such as pods/log are skipped."""
        self.discovered.add(api_version)
        for item in answer.get("resources", []):
            if "/" not in item["name"]:
                self.resources[(api_version, item["kind"])] = Resource(api_version, item["kind"], item["name"], item["namespaced"])


class ApiError(Exception):
    """A non-transient error answer from the API server."""

    def __init__(self, status: int, reason: str, body: dict | None):
        self.status = status
        self.reason = reason
        self.body = body or {}
        super().__init__(self.body.get("message") or f"{status} {reason}")


class Transient(Exception):
    """A failure worth retrying: the server or the connection may recover."""


def ref(obj: dict) -> str:
    """`Kind namespace/name`, the way every message names an object."""
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def kubeconfig_path(configured: str | None) -> Path:
    """The inventory's cluster.kubeconfig, else the first file of KUBECONFIG, else ~/.kube/config."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path("~/.kube/config").expanduser()


def reason(exc: BaseException) -> str:
    """A failed connection in a few words a user recognises."""
    text = str(exc)
    for needle, words in (
        ("Connection refused", "connection refused"),
        ("timed out", "no answer in time"),
        ("Name or service not known", "the server name does not resolve"),
        ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed"),
    ):
        if needle in text:
            return words
    return type(exc).__name__
