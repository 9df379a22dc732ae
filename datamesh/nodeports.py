"""The user's machine, as the inventory's `hosts` names it: where the NodePorts are used from.

`hosts.nodeports` is `local` or `ssh://user@host[:port]`, optionally with testinfra's query keys
`ssh_config` and `ssh_identity_file`; `hosts.address` is where the NodePorts appear, seen from that
host. `spec` is the same host for testinfra's `host` fixture (its local or ssh backend);
`NodePorts.url` gives this process an address that arrives at a NodePort *from* that host: the
address itself when local, else one OpenSSH client (`ssh -N -L ...`, the same client testinfra's ssh
backend runs) forwarding every NodePort, started on first use, so the probes of datamesh/probes.py
run unchanged either way.

Why OpenSSH's client and not fabric's forward_local: under a few concurrent HTTPS clients, fabric
3.2.3's tunnel lost its SSH transport ("Socket exception: Bad file descriptor") within a minute and
every later connection hung in its TLS handshake (tests/e2e/test_sshd.py provokes exactly that); the
client also honours the user's whole ssh_config (ProxyJump, agents, known hosts).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
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

    def options(self, ssh: str = "ssh") -> list[str]:
        """OpenSSH's client with this target's port, config, identity and user, never prompting."""
        command = [ssh, "-o", "BatchMode=yes", "-p", str(self.port)]
        command += ["-F", self.config] if self.config else []
        command += ["-i", self.identity] if self.identity else []
        return command + (["-l", self.user] if self.user else [])


def testinfra_spec(nodeports: str) -> str:
    """The testinfra host spec of `hosts.nodeports`: local:// for local, the ssh:// URL as written."""
    return "local://" if nodeports == "local" else nodeports


def ssh_target(nodeports: str) -> SshTarget:
    """The parts of an ssh:// `hosts.nodeports` value the SSH client needs."""
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
    """The platform's NodePorts from the user's machine; close() ends the SSH client, if one runs."""

    def __init__(self, inventory: Inventory):
        self.nodeports = inventory["hosts"]["nodeports"]
        self.address = inventory["hosts"]["address"]
        self.ports: dict[str, int] = inventory["nodeports"]
        self.spec = testinfra_spec(self.nodeports)
        self._tunnels: dict[int, int] = {}
        self._client: subprocess.Popen | None = None

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
        if not self._tunnels:
            self._open()
        return f"http://127.0.0.1:{self._tunnels[port]}{path}"

    def _open(self) -> None:
        """One `ssh -N` forwarding a free local port to each NodePort; back once all of them listen."""
        target = ssh_target(self.nodeports)
        ssh = shutil.which("ssh")
        if ssh is None:
            raise DatameshError(f"hosts.nodeports is {self.where}, which needs the OpenSSH client `ssh` on this "
                                "machine's PATH; install it (Debian: apt install openssh-client) or set hosts.nodeports: local.")
        tunnels = {port: free_port() for port in sorted(set(self.ports.values()))}
        command = target.options(ssh) + ["-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15"]
        for port, local in tunnels.items():
            command += ["-L", f"127.0.0.1:{local}:{self.address}:{port}"]
        errors = tempfile.TemporaryFile()
        client = subprocess.Popen([*command, target.host], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=errors)

        def listening() -> tuple[bool, str]:
            if client.poll() is not None:
                return True, "exited"
            return all(probes.port_open("127.0.0.1", local, timeout=0.5) for local in tunnels.values()), ""

        ready, _ = wait.poll(listening, 20, interval=0.05)
        if client.poll() is not None or not ready:
            client.kill()
            client.wait()
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines()
            raise DatameshError(
                f"cannot forward the NodePorts through {self.where} over SSH (hosts.nodeports): "
                f"{said[-1] if said else 'no local port listened within 20 s'}; check that `ssh "
                f"{target.user + '@' if target.user else ''}{target.host} -p {target.port} true` works without a "
                "prompt and that its SSH server allows TCP forwarding (AllowTcpForwarding).")
        errors.close()
        self._client, self._tunnels = client, tunnels

    def close(self) -> None:
        """End the SSH client and its forwards."""
        client, self._client = self._client, None
        self._tunnels.clear()
        if client is not None:
            client.terminate()
            try:
                client.wait(timeout=5)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()
