"""How the tool reaches a service in the cluster: a port-forward through the API server.

    reach = Endpoints(cluster, inventory)
    with reach.open("postgres-sales") as (host, port):
        login = reach.login("postgres-sales")
        probes.postgres_query(host, port, login.user, login.password, login.database, "SELECT 1")

It works wherever the Kubernetes API does (Docker Desktop, kind, k3d, a remote cluster): no
NodePort, no cluster DNS, no kubectl binary. `open` picks a Ready pod behind the Service the way
`kubectl port-forward svc/NAME` does (datamesh/kube.py pick_pod), resolves the Service port's
targetPort through that pod's container ports, listens on 127.0.0.1 on a free port, and opens one
port-forward stream to the pod per accepted connection (the websocket protocol carries one
connection per stream), so several clients can use one forward at once. Logins are read from the
Secrets the credentials role keeps, never typed. A pod that goes away while forwarded ends the
`with` block with one sentence naming the Service and the pod, within `timeouts.api`.
"""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import threading
from dataclasses import dataclass
from typing import Iterator

from datamesh import kube
from datamesh.cluster import Cluster
from datamesh.errors import DatameshError
from datamesh.inventory import Inventory
from datamesh.manifests import platform, secret_name

CHUNK = 256 * 1024


@dataclass(frozen=True)
class Target:
    """A Service the tool reaches, and where its login lives."""

    namespace: str                 # a key of the inventory's namespaces table
    service: str
    port: str                      # the name of the Service's port
    secret: str | None = None      # the credentials Secret, in the same namespace
    user_key: str = "username"
    password_key: str = "password"
    database: str | None = None


def targets() -> dict[str, Target]:
    """Every name `open` and `login` accept: one per PostgreSQL of files/platform.yml
    (postgres-sales, ..., postgres-sales-domain), and the platform's other services."""
    found = {
        f"postgres-{pg['key']}": Target(pg["namespace"], pg["name"], "postgres", secret_name(pg["name"]),
                                        database=pg["database"])
        for pg in platform()["postgres"]
    }
    found.update({
        "trino": Target("platform", "trino-coordinator", "http"),
        "minio": Target("platform", "minio", "api", secret_name("minio"), "root-user", "root-password"),
        "minio-console": Target("platform", "minio-console", "console"),
        "hive-metastore": Target("platform", "hive-metastore", "thrift"),
        "jupyterhub": Target("jupyterhub", "proxy-public", "http", secret_name("jupyterhub"), "admin-user", "admin-password"),
        "jupyterhub-hub": Target("jupyterhub", "hub", "hub"),
        "grafana": Target("platform", "grafana", "http", secret_name("grafana"), "admin-user", "admin-password"),
        "dbt-docs": Target("platform", "dbt-docs", "http"),
    })
    return found


@dataclass(frozen=True)
class Login:
    user: str
    password: str
    database: str | None = None


class Endpoints:
    """The platform's services as the tool reaches them, in the namespaces of one inventory."""

    def __init__(self, cluster: Cluster, inventory: Inventory):
        self.cluster = cluster
        self.inventory = inventory
        self.namespaces = inventory["namespaces"]
        self.targets = targets()
        if inventory["security"]["trino_auth"]:  # people log in on HTTPS; plain HTTP refuses every login
            self.targets["trino"] = Target("platform", "trino-coordinator", "https")

    def target(self, name: str) -> Target:
        if name not in self.targets:
            raise DatameshError(f"datamesh does not know a service named {name!r}; known: {', '.join(self.targets)}.")
        return self.targets[name]

    def namespace(self, name: str) -> str:
        return self.namespaces[self.target(name).namespace]

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret in namespace `namespace` (a key of the inventory's namespaces table), decoded."""
        where = f"{self.namespaces[namespace]}/{name}"
        live = self.cluster.get({"apiVersion": "v1", "kind": "Secret",
                                 "metadata": {"namespace": self.namespaces[namespace], "name": name}})
        value = ((live or {}).get("data") or {}).get(key)
        if not value:
            raise DatameshError(f"the Secret {where} is missing or has no {key}: run `invoke up`.")
        return base64.b64decode(value).decode()

    def login(self, name: str) -> Login:
        """The login of a service, decoded from its credentials Secret."""
        target, namespace = self.target(name), self.namespace(name)
        if not target.secret:
            raise DatameshError(f"{name} has no login Secret; it needs none.")
        stub = {"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": namespace, "name": target.secret}}
        live = self.cluster.get(stub)
        data = (live or {}).get("data") or {}
        if not data.get(target.user_key) or not data.get(target.password_key):
            raise DatameshError(f"the Secret {namespace}/{target.secret} with the login of {name} is missing or "
                                f"incomplete: run `invoke up`.")
        decoded = {key: base64.b64decode(value).decode() for key, value in data.items()}
        return Login(decoded[target.user_key], decoded[target.password_key], target.database)

    def pod(self, name: str) -> tuple[dict, int]:
        """The Ready pod behind the Service and the pod's port that its named port targets."""
        target, namespace = self.target(name), self.namespace(name)
        where = f"Service {namespace}/{target.service}"
        service = self.cluster.get({"apiVersion": "v1", "kind": "Service",
                                    "metadata": {"namespace": namespace, "name": target.service}})
        if service is None:
            raise DatameshError(f"{where} does not exist: run `invoke up`.")
        pods = self.cluster.pods(namespace, service["spec"].get("selector") or {})
        pod = kube.pick_pod(pods)
        if pod is None:
            states = ", ".join(f"{p['metadata']['name']} {p.get('status', {}).get('phase', '?')}" for p in pods) or "none"
            raise DatameshError(f"no Ready pod behind {where} (pods: {states}); "
                                f"see `invoke status` or `kubectl -n {namespace} get pods`.")
        try:
            return pod, kube.target_port(service, target.port, pod)
        except ValueError as exc:
            raise DatameshError(f"{exc}; run `invoke up` to restore it.") from exc

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[tuple[str, int]]:
        """A local address that reaches the service while the block runs: (127.0.0.1, free port)."""
        pod, port = self.pod(name)
        forward = Forward(self.cluster, self.namespace(name), self.target(name).service, pod["metadata"]["name"], port)
        try:
            yield forward.address
        except Exception as exc:
            failure = forward.failure or self._gone(forward)
            if failure:
                raise DatameshError(failure) from exc
            raise
        finally:
            forward.close()

    def _gone(self, forward: Forward) -> str | None:
        """Why the forwarded pod no longer serves, when it does not (asked after a client failed)."""
        with contextlib.suppress(DatameshError):
            live = self.cluster.get({"apiVersion": "v1", "kind": "Pod",
                                     "metadata": {"namespace": forward.namespace, "name": forward.pod}})
            if live is None or kube.ready_since(live) is None:
                return forward.lost("the pod is gone" if live is None else "the pod is no longer Ready")
        return None


class Forward:
    """A local listener whose every connection is relayed to one pod port through the API server."""

    def __init__(self, cluster: Cluster, namespace: str, service: str, pod: str, port: int):
        self.cluster, self.namespace, self.service, self.pod, self.port = cluster, namespace, service, pod, port
        self.failure: str | None = None
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = ("127.0.0.1", self._listener.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._accepting = threading.Thread(target=self._accept, name=f"forward {service}", daemon=True)
        self._accepting.start()

    def lost(self, why: str) -> str:
        """The one sentence for a forward that stopped serving."""
        return (f"the port-forward to Service {self.namespace}/{self.service} through pod {self.pod} failed: {why}; "
                f"re-run the command, and if it fails again see `kubectl -n {self.namespace} get pods`.")

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name=f"forward {self.service} #{self.connections}",
                             daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self._open.add(client)
        stream = None
        try:
            try:
                stream = self.cluster.port_stream(self.namespace, self.pod, self.port)
            except kube.ApiError as exc:
                self.failure = self.lost("the pod is gone" if exc.status == 404 else f"the API server answered {exc.status}: {exc}")
                return
            except kube.Transient as exc:
                self.failure = self.lost(f"the API server did not open the stream within {self.cluster.api_timeout} s ({exc})")
                return
            answered = relay(client, stream.socket(self.port))
            error = stream.error(self.port)
            if error and not answered:  # after an answer, an error is the program closing its side
                self.failure = self.lost(f"the pod's end answered: {error.strip()}")
        finally:
            if stream is not None:
                stream.close()
            with self._lock:
                self._open.discard(client)
            client.close()

    def close(self) -> None:
        """Stop accepting and end every relayed connection."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for client in list(self._open):
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
        self._accepting.join(timeout=5)


def relay(one: socket.socket, other) -> bool:
    """Copy bytes both ways until either side closes; True when `other` sent anything."""
    peers = {one.fileno(): other, other.fileno(): one}
    answered = False
    while True:
        readable, _, _ = select.select([one, other], [], [])
        for sock in readable:
            try:
                data = sock.recv(CHUNK)
                if data:
                    peers[sock.fileno()].sendall(data)
            except OSError:
                return answered
            if not data:
                return answered
            answered = answered or sock is other
