"""The user's machine, as the inventory's `hosts` names it: where the NodePorts are used from.

`hosts.nodeports` is `local` or `ssh://user@host[:port]`, optionally with testinfra's query keys
`ssh_config` and `ssh_identity_file`; `hosts.address` is where the NodePorts appear, seen from that
host. `spec` is the same host for testinfra's `host` fixture (its local or ssh backend);
`NodePorts.url` gives this process an address that arrives at a NodePort *from* that host: the
address itself when local, else a tunnel through the SSH host (fabric's forward_local, opened on
first use), so the probes of datamesh/probes.py run unchanged either way.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datamesh import probes, wait
from datamesh.errors import DatameshError

if TYPE_CHECKING:
    from datamesh.inventory import Inventory


@dataclass(frozen=True)
class SshTarget:
    user: str | None
    host: str
    port: int
    config: str | None
    identity: str | None


def testinfra_spec(nodeports: str) -> str:
    """The testinfra host spec of `hosts.nodeports`: local:// for local, the ssh:// URL as written."""
    return "local://" if nodeports == "local" else nodeports


def ssh_target(nodeports: str) -> SshTarget:
    """The parts of an ssh:// `hosts.nodeports` value fabric needs."""
    url = urllib.parse.urlsplit(nodeports)
    query = urllib.parse.parse_qs(url.query)
    if url.scheme != "ssh" or not url.hostname:
        raise DatameshError(f"hosts.nodeports must be 'local' or 'ssh://user@host[:port]', got {nodeports!r}.")
    return SshTarget(url.username, url.hostname, url.port or 22,
                     (query.get("ssh_config") or [None])[0], (query.get("ssh_identity_file") or [None])[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NodePorts:
    """The platform's NodePorts from the user's machine; close() ends any tunnels."""

    def __init__(self, inventory: Inventory):
        self.nodeports = inventory["hosts"]["nodeports"]
        self.address = inventory["hosts"]["address"]
        self.ports: dict[str, int] = inventory["nodeports"]
        self.spec = testinfra_spec(self.nodeports)
        self._tunnels: dict[int, int] = {}
        self._stack = contextlib.ExitStack()
        self._connection = None

    @property
    def where(self) -> str:
        """How a message names the place the NodePorts were used from."""
        return "this machine" if self.nodeports == "local" else self.nodeports.split("?")[0]

    def port(self, name: str) -> int:
        if name not in self.ports:
            raise DatameshError(f"the inventory's nodeports table has no {name!r}; it has: {', '.join(self.ports)}.")
        return self.ports[name]

    def url(self, name: str, path: str = "") -> str:
        """http://HOST:PORT{path} that reaches NodePort `name` as the nodeports host does."""
        port = self.port(name)
        if self.nodeports == "local":
            return f"http://{self.address}:{port}{path}"
        if port not in self._tunnels:
            self._tunnels[port] = self._tunnel(port)
        return f"http://127.0.0.1:{self._tunnels[port]}{path}"

    def _tunnel(self, port: int) -> int:
        import fabric  # paramiko loads only for an SSH host

        if self._connection is None:
            target = ssh_target(self.nodeports)
            config = fabric.Config(runtime_ssh_path=target.config) if target.config else None
            self._connection = self._stack.enter_context(fabric.Connection(
                target.host, user=target.user, port=target.port, config=config,
                connect_kwargs={"key_filename": target.identity} if target.identity else {}))
            try:
                self._connection.open()
            except Exception as exc:  # paramiko and socket errors alike: one sentence
                raise DatameshError(f"cannot log in to {self.where} over SSH (hosts.nodeports): {exc}; check that "
                                    f"`ssh {target.user + '@' if target.user else ''}{target.host} -p {target.port} "
                                    "true` works without a prompt.") from exc
        local = free_port()
        self._stack.enter_context(self._connection.forward_local(local, remote_port=port, remote_host=self.address))
        # fabric binds the local end in its tunnel thread: wait for it, or a first client is refused
        listening, _ = wait.poll(lambda: (probes.port_open("127.0.0.1", local, timeout=0.5), ""), 10, interval=0.05)
        if not listening:
            raise DatameshError(f"the SSH tunnel to {self.address}:{port} through {self.where} did not open a local "
                                f"port within 10 s; check that the SSH server allows TCP forwarding (AllowTcpForwarding).")
        return local

    def close(self) -> None:
        """End the tunnels. A tunnel thread's own error (a client that reset its connection) is not
        raised again here: it showed, if it mattered, in the check whose request met it."""
        from invoke.exceptions import ThreadException

        try:
            self._stack.close()
        except ThreadException:
            pass
        finally:
            self._tunnels.clear()
            self._connection = None
