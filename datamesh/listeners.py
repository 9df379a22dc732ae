"""Which program listens on a TCP port of the NodePort host, for `invoke doctor`.

On this machine the answer comes from the kernel's socket table and each process's open files
(/proc on Linux), or from `lsof` where there is no /proc (macOS); on an SSH host
(`hosts.nodeports: ssh://...`) from one `ss -Hltnp` run there. A listener whose program cannot be
named (another user's process, an `ss` without -p rights) is reported as listening, unnamed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from datamesh.nodeports import ssh_target

PROC = Path("/proc")
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
SS_USER = re.compile(r'\("([^"]+)",pid=(\d+)')


@dataclass(frozen=True)
class Listener:
    port: int
    program: str = ""   # its name, e.g. "docker-proxy"; empty when it cannot be told
    pid: int = 0
    command: str = ""   # its command line, as far as it can be read

    def shown(self) -> str:
        if not self.program:
            return "a program this user cannot name (try `sudo ss -ltnp` or `sudo lsof -iTCP -sTCP:LISTEN`)"
        return f"{self.program} (pid {self.pid}{': ' + self.command if self.command else ''})"

    def named(self, names: list[str]) -> bool:
        """True when the program, or a file its command line runs, is one of `names`."""
        words = [self.program, *(os.path.basename(w) for w in self.command.split())]
        return any(word in names for word in words if word)


def listeners(ports: set[int], nodeports: str) -> dict[int, Listener]:
    """The listener of each port that has one, on the NodePort host."""
    if nodeports != "local":
        return _remote(ports, nodeports)
    if (PROC / "net" / "tcp").exists():
        return _proc(ports)
    return _lsof(ports)


def _proc(ports: set[int]) -> dict[int, Listener]:
    inodes: dict[str, int] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == LISTEN and port in ports:
                inodes[fields[9]] = port
    found = {port: Listener(port) for port in inodes.values()}
    if not inodes:
        return found
    for pid in (p for p in os.listdir(PROC) if p.isdigit()):
        hits = {inodes[link[8:-1]] for link in _links(PROC / pid / "fd") if link.startswith("socket:[") and link[8:-1] in inodes}
        if not hits:
            continue
        try:
            program = (PROC / pid / "comm").read_text().strip()
            command = (PROC / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or another user's
            continue
        for port in hits:
            found[port] = Listener(port, program, int(pid), command[:200])
    return found


def _links(fds: Path) -> list[str]:
    """Where a process's open files point; what closes or is another user's meanwhile is left out."""
    try:
        names = os.listdir(fds)
    except OSError:
        return []
    links = []
    for fd in names:
        try:
            links.append(os.readlink(fds / fd))
        except OSError:
            continue
    return links


def _lsof(ports: set[int]) -> dict[int, Listener]:
    lsof = shutil.which("lsof")
    if lsof is None or not ports:
        return {}
    # +c0: the whole command name (lsof cuts it to 9 characters, "com.docke", unless told)
    args = [lsof, "+c0", "-nP", "-sTCP:LISTEN", "-Fpcn", *(f"-iTCP:{port}" for port in sorted(ports))]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    found: dict[int, Listener] = {}
    pid, program = 0, ""
    for line in out.splitlines():
        tag, value = line[:1], line[1:]
        if tag == "p":
            pid = int(value)
        elif tag == "c":
            program = value
        elif tag == "n" and value.rsplit(":", 1)[-1].isdigit():
            port = int(value.rsplit(":", 1)[1])
            if port in ports:
                found[port] = Listener(port, program, pid)
    return found


def _remote(ports: set[int], nodeports: str) -> dict[int, Listener]:
    """One `ss -Hltnp` on the SSH host (OpenSSH's client, as for the NodePorts' forward)."""
    target = ssh_target(nodeports)
    done = subprocess.run([*target.options(), target.host, "ss -Hltnp"], capture_output=True, text=True, timeout=60)
    return parse_ss(done.stdout, ports)


def parse_ss(text: str, ports: set[int]) -> dict[int, Listener]:
    """`ss -Hltnp` lines: State Recv-Q Send-Q Local:Port Peer:Port [users:(("name",pid=N,fd=M))]."""
    found: dict[int, Listener] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[3].rsplit(":", 1)[-1].isdigit():
            continue
        port = int(fields[3].rsplit(":", 1)[1])
        if port in ports:
            user = SS_USER.search(line)
            found[port] = Listener(port, user.group(1), int(user.group(2))) if user else Listener(port)
    return found
