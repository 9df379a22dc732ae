"""A real OpenSSH server on 127.0.0.1 for tests of what logs in over SSH: pytest-testinfra's ssh
backend and the NodePorts' forward (both run the `ssh` client), as root and without prompts.

Everything lives in the caller's folder: the server's own ed25519 host key and a client key pair
(never /etc/ssh's or /root/.ssh's keys), sshd_config, authorized_keys, sshd.pid and sshd.log, and
the client side: ssh_config (a Host block for 127.0.0.1) and a known_hosts pre-filled with the host
key, so that clients check the server strictly and still never ask. Debian's openssh-server is
installed when missing (install()), without starting its own service.

Choices and why:
- StrictModes no: with it, sshd checks every directory above authorized_keys up to / (the file is
  outside root's home) and refuses /tmp, which is world-writable, so keys under pytest's tmp_path
  would never be accepted. The files are written 0600 by root anyway.
- ControlPath none in the client config: testinfra's ssh backend adds `-o ControlMaster=auto
  -o ControlPersist=60s` to every command, and command-line options win over the config file. With
  no control path that is inert, so no master connection outlives the test (one would otherwise
  hold a session for 60 s after the server stopped); each command does its own short handshake.
- UsePAM no: root logs in with the key only (PermitRootLogin prohibit-password), so PAM is not
  needed. sshd then refuses accounts whose password is locked with "!" (some fresh machines lock
  root that way); start() says so and how to unlock it without setting a password.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from datamesh.nodeports import free_port
from testbed.common import (TestbedError, apt_install, logger, pid_alive, proc_stat, run, runs_from, stop_process,
                            wait_until)

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
HOST = "127.0.0.1"
START_TIMEOUT = 15.0

log = logger("sshd")

_procs: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class Sshd:
    port: int
    url: str           # testinfra host spec: ssh://root@127.0.0.1:PORT?ssh_config=...&ssh_identity_file=...
    config: Path       # the client's ssh_config (`ssh -F`)
    identity: Path     # the client's private key, authorized for root
    known_hosts: Path  # holds the server's host key as [127.0.0.1]:PORT
    pid: int
    log: Path


def install() -> Path:
    if not SSHD.exists():
        apt_install("openssh-server", log=log)
    return SSHD


def _keygen(path: Path, comment: str) -> None:
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)  # ssh-keygen would ask before overwriting
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], capture=True)


def _sshd_config(folder: Path, port: int) -> str:
    return f"""\
# Written by testbed/sshd.py: a test server for root logins with the key in this folder only.
ListenAddress {HOST}
Port {port}
HostKey {folder / "ssh_host_ed25519_key"}
PidFile {folder / "sshd.pid"}
AuthorizedKeysFile {folder / "authorized_keys"}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
Subsystem sftp internal-sftp
"""


def _ssh_config(folder: Path, port: int) -> str:
    return f"""\
# Written by testbed/sshd.py: how clients log in to the test server of this folder.
Host {HOST}
    Port {port}
    User root
    IdentityFile {folder / "id_ed25519"}
    IdentitiesOnly yes
    UserKnownHostsFile {folder / "known_hosts"}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    BatchMode yes
    ControlPath none
    ConnectTimeout 10
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def _q(path: Path) -> str:
    return urllib.parse.quote(str(path), safe="/")


def sessions(sshd: Sshd) -> list[int]:
    """The pids of the server's per-connection processes (the listener's children)."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st is not None and st[1] == sshd.pid and st[0] not in ("Z", "X"):
                found.append(int(d))
    return found


def start(folder: Path) -> Sshd:
    """Start sshd on a free port of 127.0.0.1 with keys and configs in `folder`; returns once
    `ssh -F <config> root@127.0.0.1 true` works, or raises TestbedError with sshd.log's last lines."""
    install()
    folder = Path(folder).resolve()
    if any(c.isspace() or c in "\"'" for c in str(folder)):
        raise TestbedError(f"{folder}: the sshd folder's path must have no spaces or quotes (ssh_config paths)")
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    host_key, identity = folder / "ssh_host_ed25519_key", folder / "id_ed25519"
    _keygen(host_key, "datamesh-testbed-sshd-host")
    _keygen(identity, "datamesh-testbed-sshd-client")
    port = free_port()
    sshd_config, config, known_hosts = folder / "sshd_config", folder / "ssh_config", folder / "known_hosts"
    _write(sshd_config, _sshd_config(folder, port))
    _write(folder / "authorized_keys", (folder / "id_ed25519.pub").read_text())
    key_type, key = (folder / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    _write(known_hosts, f"[{HOST}]:{port} {key_type} {key}\n")
    _write(config, _ssh_config(folder, port))
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)

    log_file = folder / "sshd.log"
    with open(log_file, "ab") as out:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(sshd_config)], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _procs[proc.pid] = proc
    sshd = Sshd(port=port, config=config, identity=identity, known_hosts=known_hosts, pid=proc.pid, log=log_file,
                url=f"ssh://root@{HOST}:{port}?ssh_config={_q(config)}&ssh_identity_file={_q(identity)}")

    def logs_in() -> bool:
        cp = run(["ssh", "-F", str(config), "-p", str(port), f"root@{HOST}", "true"],
                 capture=True, check=False, timeout=10)
        if cp.returncode != 0:
            raise TestbedError(cp.stdout.strip() or f"ssh exited with code {cp.returncode}")
        return True

    try:
        wait_until(f"sshd on {HOST}:{port} to let root log in", logs_in, START_TIMEOUT, proc=proc,
                   log_file=log_file, interval=0.1)
    except BaseException as e:
        stop(sshd)
        if isinstance(e, TestbedError) and "account is locked" in log_file.read_text(errors="replace"):
            raise TestbedError(f"{e}\nsshd refuses root because its password is locked ('!' in /etc/shadow) and "
                               "UsePAM is no; `usermod -p '*' root` unlocks it and still allows no password") from e
        raise
    log(f"sshd {proc.pid} on {HOST}:{port} ({folder}) up in {time.monotonic() - t0:.2f}s")
    return sshd


def stop(sshd: Sshd) -> None:
    """Stop the server's sessions (each login is a child process that would outlive the listener),
    then the listener. Safe to call twice: a pid that is gone, or now runs something else, is left
    alone."""
    proc = _procs.pop(sshd.pid, None)
    if pid_alive(sshd.pid) and runs_from(sshd.pid, sshd.config.parent / "sshd_config"):
        children = sessions(sshd)  # first, so that the listener reaps them
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(TestbedError):
                wait_until(f"sshd session {pid} to exit", lambda p=pid: not pid_alive(p), 5, interval=0.05, errors=())
            with contextlib.suppress(ProcessLookupError):
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
        stop_process(sshd.pid, grace=5)
    if proc is not None:
        proc.wait()


@contextlib.contextmanager
def running(folder: Path):
    """start(folder) for the length of a with block, stopped however the block ends."""
    sshd = start(folder)
    try:
        yield sshd
    finally:
        stop(sshd)
