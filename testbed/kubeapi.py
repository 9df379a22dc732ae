"""A minimal Kubernetes API client (stdlib only) for the testbed's own background loop.

The loop (testbed/provisioner.py, testbed/links.py) runs in a process of its own that should
start fast and never share the tool's client: its user agent (datamesh-testbed-...) keeps its
writes apart from the tool's (datamesh/...) in the audit log.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import tempfile
import urllib.parse
from pathlib import Path

import yaml

from testbed.common import TestbedError


class Api:
    """JSON requests to the API server of a kubeconfig's current context."""

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

    def must(self, method: str, path: str, body: dict | None = None, ok: tuple[int, ...] = (200, 201)) -> dict:
        """call(), raising TestbedError unless the status is one of `ok`."""
        status, answer = self.call(method, path, body)
        if status not in ok:
            raise TestbedError(f"{method} {path}: HTTP {status} {answer.get('message', '')}")
        return answer


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
