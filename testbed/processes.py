"""The service testbed's run folder and its process table.

The run folder (config files, data, logs, pids.json, config.json) is .testbed/services/ in the
work tree, or $DATAMESH_SERVICES_RUN. Every started process is recorded in pids.json, so `down` in
another process finds it, and carries the marker variable DATAMESH_TESTBED_SERVICES=<run folder>,
so processes that start sessions of their own (the hub's single-user servers) are found too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from testbed.common import REPO, TestbedError, logger, pid_alive, proc_stat

MARKER_VAR = "DATAMESH_TESTBED_SERVICES"
log = logger("services")


def run_dir() -> Path:
    return Path(os.environ.get("DATAMESH_SERVICES_RUN") or REPO / ".testbed" / "services")


def pids_file() -> Path:
    return run_dir() / "pids.json"


class Procs:
    """Started processes, persisted in pids.json so that `down` in another process finds them."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}
        if pids_file().exists():
            with contextlib.suppress(ValueError):
                self.entries = json.loads(pids_file().read_text()).get("processes", {})

    def save(self) -> None:
        pids_file().parent.mkdir(parents=True, exist_ok=True)
        tmp = pids_file().with_suffix(".tmp")
        tmp.write_text(json.dumps({"marker": str(run_dir()), "processes": self.entries}, indent=2))
        os.replace(tmp, pids_file())

    def start(self, name: str, cmd: list[str], *, env: dict, cwd: Path, log_file: Path,
              user: str | None = None, stop_signal: int = signal.SIGTERM) -> subprocess.Popen:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        env = dict(env)
        env[MARKER_VAR] = str(run_dir())
        out = open(log_file, "ab")
        out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        kwargs = {}
        if user:
            kwargs["user"] = user
            kwargs["group"] = user
            kwargs["extra_groups"] = []
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, **kwargs)
        out.close()
        self.entries[name] = {"pid": p.pid, "cmd": cmd, "log": str(log_file), "stop_signal": int(stop_signal),
                              "started": time.time()}
        self.save()
        return p

    def alive(self, name: str) -> bool:
        e = self.entries.get(name)
        return bool(e) and pid_alive(e["pid"])


def _pgid(pid: int) -> int:
    return (proc_stat(pid) or ("", 0, 0))[2]


def testbed_pids() -> set[int]:
    """Every live process of this testbed: the started ones, their process groups, and anything that
    carries the marker variable (single-user servers start their own session)."""
    leaders = {e["pid"] for e in Procs().entries.values()}
    marker = f"{MARKER_VAR}={run_dir()}".encode()
    found: set[int] = set()
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        if pid == me:
            continue
        st = proc_stat(pid)
        if st is None:
            continue
        if pid in leaders or st[2] in leaders:
            found.add(pid)
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    found.add(pid)
    return {p for p in found if pid_alive(p)}


def rss_bytes(pids) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
    return total


def tree_rss(name: str) -> int:
    """RSS of a started process and its process group."""
    e = Procs().entries.get(name)
    if not e:
        return 0
    return rss_bytes({p for p in testbed_pids() if p == e["pid"] or _pgid(p) == e["pid"]})


def _reap(pids) -> None:
    """Collect the exit status of processes this Python process started, so none stays a zombie."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def stop_all() -> None:
    """Stop every process (SIGTERM, or SIGINT for PostgreSQL, then SIGKILL) and forget them."""
    procs = Procs()
    for _name, e in list(procs.entries.items())[::-1]:
        pid = e["pid"]
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, e.get("stop_signal", signal.SIGTERM))
    # processes in sessions of their own (single-user servers the hub spawned) carry the marker
    leaders = {e["pid"] for e in procs.entries.values()}
    for pid in testbed_pids():
        if pid not in leaders and _pgid(pid) not in leaders:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and testbed_pids():
        time.sleep(0.2)
    left = testbed_pids()
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if left:
        log(f"killed {len(left)} process(es) that did not stop within 20s: {sorted(left)}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and testbed_pids():
        time.sleep(0.1)
    _reap(e["pid"] for e in procs.entries.values())
    remaining = testbed_pids()
    pids_file().unlink(missing_ok=True)
    if remaining:
        raise TestbedError(f"processes still alive after SIGKILL: {sorted(remaining)}")


def stop_one(name: str, timeout: float = 20) -> None:
    procs = Procs()
    e = procs.entries.get(name)
    if not e:
        raise TestbedError(f"no process named {name} in {pids_file()}")
    pid = e["pid"]
    group = {p for p in testbed_pids() if p == pid or _pgid(p) == pid}
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, e.get("stop_signal", signal.SIGTERM))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in group):
        time.sleep(0.1)
    for p in group:
        if pid_alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    _reap([pid])
