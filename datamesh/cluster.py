"""The only module that talks to the Kubernetes API.

Server-side apply with field manager `datamesh`, reads, deletes and server-side dry runs, as plain
HTTPS requests with urllib3 and the kube context's login (datamesh/kubeconfig.py); the official
client serves port-forward streams and the logins it refreshes. Discovery asks once per API
group-version in use and keeps the answer on disk per server and version, as kubectl does, so a
later run asks again only for a kind the kept answer lacks (`Cluster.resource`). Transient
failures (connection reset, 409, 429, 5xx) are retried with tenacity; an unreachable API fails
within `timeouts.api` seconds with one sentence. What a request names and what its answers mean,
without I/O, is `datamesh/kube.py`.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
from typing import Any, Callable
from urllib.parse import urlencode

import tenacity
import urllib3

from datamesh import kubeconfig
from datamesh.errors import DatameshError
from datamesh.inventory import Inventory
from datamesh.kube import (ApiError, Discovery, Resource, Transient, answer_of, discovery_file, group_version_path, keep,
                           kubeconfig_path, reason, ref)

FIELD_MANAGER = "datamesh"
USER_AGENT = "datamesh/0.1"  # with the process id, so the audit log tells two runs apart
TRANSIENT_STATUS = frozenset({409, 429, 500, 502, 503, 504})
FINAL_CONFLICT = TRANSIENT_STATUS - {409}  # for writes that carry a resourceVersion: a 409 means someone else wrote
REQUEST_TIMEOUT = (5, 60)
PING_ATTEMPT_SECONDS = 3
CHANNEL_PROTOCOL = "v4.channel.k8s.io"  # port-forward's, as the official client speaks it


@functools.cache
def port_stream_class() -> type:
    """The official client's port-forward (imported only for streams), whose local end always
    closes when its thread ends: upstream's thread can die on a TLS error (the server dropping a
    connection mid-upload) and leave the local socket open, so whoever reads it would wait forever."""
    import websocket
    from kubernetes.stream import ws_client

    class PortStream(ws_client.PortForward):
        def _proxy(self) -> None:
            try:
                super()._proxy()
            except (OSError, websocket.WebSocketException):
                pass  # the stream was dropped; its local end closes below, and the client sees that
            finally:
                for port in self.local_ports.values():
                    port.python.close()

    return PortStream


class Cluster:
    """A connection to one kube context; every API call of the tool goes through it."""

    def __init__(self, inventory: Inventory):
        settings = inventory["cluster"]
        self.hint = settings["hint"]
        self.api_timeout = inventory["timeouts"]["api"]
        self.retry_seconds = inventory["timeouts"]["retry"]
        self.kubeconfig = kubeconfig_path(settings["kubeconfig"])
        self.context = settings["context"]
        self.server = "?"
        self.version = ""  # the server's gitVersion, once ping() has asked: it keys the discovery cache
        self.requests: dict[str, int] = {}
        self.user_agent = f"{USER_AGENT} (pid {os.getpid()})"
        self._discovery = Discovery()
        self._from_disk: set[str] = set()
        self.guard: Callable[[], None] | None = None  # called before each write (datamesh/lock.py)
        self.pool = self._connect(inventory)

    def _connect(self, inventory: Inventory) -> urllib3.PoolManager:
        if not self.kubeconfig.is_file():
            raise DatameshError(
                f"no kubeconfig at {self.kubeconfig} (set cluster.kubeconfig in {inventory.path.name} or KUBECONFIG): {self.hint}."
            )
        data, names, current = kubeconfig.contexts(self.kubeconfig)
        self.context = self.context or current
        if self.context not in names:
            raise DatameshError(
                f"kube context '{self.context}' is not in {self.kubeconfig} (it has: {', '.join(names) or 'none'}): {self.hint}."
            )
        self.login = kubeconfig.login(self.kubeconfig, data, self.context)
        self.server = self.login.server
        try:
            tls = kubeconfig.tls_context(self.login)
        except (OSError, ssl.SSLError) as exc:
            raise DatameshError(f"cannot use the TLS files of kube context '{self.context}' from {self.kubeconfig} ({exc}).") from exc
        options = {"ssl_context": tls, "server_hostname": self.login.tls_server_name, "maxsize": 4,
                   "assert_hostname": False if not self.login.verify else None}
        if self.login.proxy:
            return urllib3.ProxyManager(self.login.proxy, **options)
        return urllib3.PoolManager(**options)

    # -- requests -------------------------------------------------------------------------

    def _send(self, method: str, path: str, query: dict | None = None, body: Any = None,
              content_type: str = "application/json", timeout: Any = REQUEST_TIMEOUT,
              transient: frozenset = TRANSIENT_STATUS, raw: bool = False) -> Any:
        """One HTTP request; returns the decoded JSON answer (the text with `raw`), or raises ApiError / Transient."""
        query = {k: v for k, v in (query or {}).items() if v is not None}
        url = self.server + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "*/*" if raw else "application/json", "Content-Type": content_type, "User-Agent": self.user_agent,
                   **self.login.headers()}
        payload = None if body is None else json.dumps(body)  # JSON is YAML too, for apply patches
        self.requests[method] = self.requests.get(method, 0) + 1
        try:
            response = self.pool.request(method, url, body=payload, headers=headers, retries=False,
                                         timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1])
                                         if isinstance(timeout, tuple) else timeout)
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Transient(reason(exc)) from exc
        if raw and 200 <= response.status < 300:
            return data.decode(errors="replace")
        decoded = answer_of(data)
        if 200 <= response.status < 300:
            return decoded
        if response.status in transient:
            raise Transient(f"{response.status} {decoded.get('message', response.reason)}")
        raise ApiError(response.status, response.reason, decoded)

    def request(self, method: str, path: str, **kwargs: Any) -> dict:
        """`_send` with tenacity retries of transient failures for `timeouts.retry` seconds."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            stop=tenacity.stop_after_delay(self.retry_seconds),
            wait=tenacity.wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )
        try:
            return retrying(self._send, method, path, **kwargs)
        except Transient as exc:
            raise DatameshError(
                f"the Kubernetes API at {self.server} kept failing for {self.retry_seconds} s ({exc}) on {method} {path}; "
                f"check the cluster and re-run: {self.hint}."
            ) from exc

    def ping(self) -> str:
        """Check the API answers within `timeouts.api` seconds; return its version."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            stop=tenacity.stop_after_delay(max(self.api_timeout - PING_ATTEMPT_SECONDS - 1, 0)),
            wait=tenacity.wait_fixed(1),
            reraise=True,
        )
        try:
            answer = retrying(self._send, "GET", "/version", timeout=PING_ATTEMPT_SECONDS)
        except Transient as exc:
            raise DatameshError(
                f"cannot reach the Kubernetes API of context '{self.context}' at {self.server} ({exc}): {self.hint}."
            ) from exc
        except ApiError as exc:
            raise DatameshError(
                f"the Kubernetes API of context '{self.context}' at {self.server} refused the tool ({exc.status} {exc}); "
                f"check the credentials of that context in {self.kubeconfig}."
            ) from exc
        self.version = answer.get("gitVersion", "")
        return self.version or "?"

    # -- discovery ------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        if api_version not in self._discovery.discovered:
            self._discover(api_version, cached=True)
        found = self._discovery.resources.get((api_version, kind))
        if found is None and api_version in self._from_disk:  # a kind added since: ask the server
            self._discover(api_version, cached=False)
            found = self._discovery.resources.get((api_version, kind))
        if found is None:
            raise DatameshError(f"the cluster at {self.server} does not serve {kind} in {api_version}; it may be too old for datamesh.")
        return found

    def _discover(self, api_version: str, cached: bool) -> None:
        """One group-version's kinds: from the disk cache of this server and version when there is one
        (`kube.discovery_file`), else from the server, then kept on disk for the next run."""
        path = discovery_file(self.server, self.version, api_version) if self.version else None
        if cached and path is not None:
            try:
                self._discovery.add(api_version, json.loads(path.read_text()))
                self._from_disk.add(api_version)
                return
            except (OSError, ValueError, KeyError, TypeError):
                pass  # missing or unreadable: the server's answer replaces it
        try:
            answer = self.request("GET", group_version_path(api_version))
        except ApiError as exc:
            if exc.status != 404:
                raise
            answer = {"resources": []}
        self._discovery.add(api_version, answer)
        self._from_disk.discard(api_version)
        if path is not None and answer["resources"]:
            keep(path, {"resources": answer["resources"]})

    # -- objects --------------------------------------------------------------------------

    def _object_path(self, obj: dict) -> str:
        meta = obj["metadata"]
        return self.resource(obj["apiVersion"], obj["kind"]).path(meta.get("namespace"), meta["name"])

    def get(self, obj: dict) -> dict | None:
        """The live object with the same kind, namespace and name, or None."""
        try:
            return self.request("GET", self._object_path(obj))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise self._failed("read", obj, exc) from exc

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             labels: str | None = None, fields: str | None = None) -> list[dict]:
        resource = self.resource(api_version, kind)
        try:
            answer = self.request("GET", resource.path(namespace), query={"labelSelector": labels, "fieldSelector": fields})
        except ApiError as exc:
            if exc.status == 404:
                return []
            raise DatameshError(f"cannot list {kind} in {namespace or 'the cluster'} ({exc.status} {exc}).") from exc
        items = answer.get("items", [])
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def apply(self, obj: dict, dry_run: bool = False) -> dict:
        """Server-side apply of one object, forcing our field ownership."""
        query = {"fieldManager": FIELD_MANAGER, "force": "true", "dryRun": "All" if dry_run else None}
        if self.guard and not dry_run:
            self.guard()
        try:
            return self.request("PATCH", self._object_path(obj), query=query, body=obj,
                                content_type="application/apply-patch+yaml")
        except ApiError as exc:
            raise self._failed("apply", obj, exc) from exc

    def delete(self, obj: dict, propagation: str = "Background") -> bool:
        """Delete one object; False when it was already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if self.guard:
            self.guard()
        try:
            self.request("DELETE", self._object_path(obj), body=body)
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise self._failed("delete", obj, exc) from exc

    def create(self, obj: dict) -> dict:
        """POST a new object; ApiError 409 when it exists already (never retried)."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        return self.request("POST", resource.path(obj["metadata"].get("namespace")), body=obj, transient=FINAL_CONFLICT)

    def replace(self, obj: dict) -> dict:
        """PUT an object read before, with its resourceVersion: ApiError 409 when it changed since (never retried)."""
        return self.request("PUT", self._object_path(obj), body=obj, transient=FINAL_CONFLICT)

    def _failed(self, action: str, obj: dict, exc: ApiError) -> DatameshError:
        return DatameshError(f"the API server refused to {action} {ref(obj)} ({exc.status}: {exc}).")

    # -- streams ----------------------------------------------------------------------------

    def port_stream(self, namespace: str, pod: str, port: int):
        """One TCP connection to a pod's port through the API server's port-forward (a websocket,
        v4.channel.k8s.io, as the official client speaks it): read and write `.socket(port)`.

        The handshake is bounded by `timeouts.api`. An answer other than 101 raises ApiError with
        its status (404: the pod is gone); no answer raises Transient.
        """
        import websocket

        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward?ports={port}"
        header = [f"sec-websocket-protocol: {CHANNEL_PROTOCOL}", f"user-agent: {self.user_agent}"]
        header += [f"{name}: {value}" for name, value in self.login.headers().items()]
        self.requests["PORTFORWARD"] = self.requests.get("PORTFORWARD", 0) + 1
        stream = websocket.WebSocket(sslopt=kubeconfig.stream_tls(self.login), skip_utf8_validation=True)
        url = "ws" + (self.server + path).removeprefix("http")  # https -> wss, http -> ws
        try:
            stream.connect(url, header=header, timeout=self.api_timeout)
        except websocket.WebSocketBadStatusException as exc:
            raise ApiError(exc.status_code, exc.status_message or "", answer_of(exc.resp_body)) from exc
        except (websocket.WebSocketException, OSError) as exc:
            raise Transient(reason(exc)) from exc
        stream.settimeout(None)  # the client's proxy thread waits on select, never on the socket
        return port_stream_class()(stream, [port])

    # -- facts used by the engine --------------------------------------------------------

    def nodes(self) -> list[dict]:
        return self.list("v1", "Node")

    def events(self, namespace: str, name: str) -> list[dict]:
        events = self.list("v1", "Event", namespace, fields=f"involvedObject.name={name}")
        return sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def node_stats(self, node: str) -> dict | None:
        """The kubelet's stats summary of a node through the API server, asked once; None where none is served."""
        try:
            return self._send("GET", f"/api/v1/nodes/{node}/proxy/stats/summary", timeout=(5, 10))
        except (ApiError, Transient):
            return None

    def logs(self, namespace: str, pod: str, container: str, lines: int = 50, previous: bool = False) -> str:
        """A container's last log lines (its previous run's with `previous`); empty when there are none."""
        query = {"container": container, "tailLines": lines, "previous": "true" if previous else None}
        try:
            return self._send("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query, raw=True)
        except (ApiError, Transient):
            return ""

    def pods(self, namespace: str, selector: dict[str, str]) -> list[dict]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return self.list("v1", "Pod", namespace, labels=labels)

    def endpoint_slices(self, namespace: str, service: str) -> list[dict]:
        return self.list("discovery.k8s.io/v1", "EndpointSlice", namespace, labels=f"kubernetes.io/service-name={service}")
