"""What both testbeds share: the cache (its folder, its one lock, atomic builds), the Go
environment, errors and logging, commands, downloads, waiting, and process checks.

Everything built is cached by version under $DATAMESH_CACHE/testbed (default
~/.cache/datamesh/testbed), one folder per component and version (component_dir), next to the
Go caches (go/{mod,build,path}) and Maven's (m2/). Each entry is built in a temporary folder
(.tmp-<name>-*) and renamed into place under the cache lock (.lock), so a killed build never
leaves a half-filled entry and one builder runs at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from datamesh.kube import cache_home

REPO = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"
MAVEN_REPO = os.environ.get("DATAMESH_MAVEN_REPO", "https://repo.maven.apache.org/maven2").rstrip("/")


class TestbedError(RuntimeError):
    """A testbed step failed; the message says which and what to do."""

    __test__ = False  # not a pytest test class


def logger(name: str):
    """A log function that prefixes its lines with [name], on stderr."""
    def log(msg: str) -> None:
        print(f"[{name}] {msg}", file=sys.stderr, flush=True)
    return log


# ------------------------------------------------------------------ the cache


def cache_root() -> Path:
    """$DATAMESH_CACHE/testbed, by default ~/.cache/datamesh/testbed: outside the work tree."""
    return cache_home() / "testbed"


def component_dir(name: str, version: str) -> Path:
    return cache_root() / f"{name}-{version}"


_held = threading.local()


@contextlib.contextmanager
def cache_lock():
    """One builder at a time, across processes (flock on .lock); re-entrant within a thread, so a
    step that holds it may call another that takes it."""
    if getattr(_held, "depth", 0):
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
            fcntl.flock(fh, fcntl.LOCK_UN)


def clean_stale_builds() -> None:
    """Remove the temporary folders of builds that died; no build is live while we hold the lock."""
    with cache_lock():
        for p in cache_root().glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)


def build_atomically(final: Path, build_fn, expect: tuple[str, ...] = ()) -> Path:
    """Run build_fn(tmpdir) and rename tmpdir to `final`, under the cache lock. The entry counts as
    built when it exists with every path of `expect` (relative to it) in it; an incomplete one is
    built again and replaced."""
    def complete(path: Path) -> bool:
        return path.is_dir() and all((path / e).exists() for e in expect)

    if complete(final):
        return final
    with cache_lock():
        if complete(final):
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in [*final.parent.glob(f".tmp-{final.name}-*"), *final.parent.glob(f".{final.name}.*")]:
            shutil.rmtree(stale, ignore_errors=True)  # killed builds, in this and the older naming
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
        try:
            build_fn(tmp)
            missing = [e for e in expect if not (tmp / e).exists()]
            if missing:
                raise TestbedError(f"building {final.name} produced no {', '.join(missing)}")
            if final.exists():  # an incomplete entry
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def go_env() -> dict[str, str]:
    """The environment of every go command of both testbeds: caches under cache_root(), a writable
    module cache, no cgo, no workspace, no toolchain download."""
    root = cache_root() / "go"
    env = {k: v for k, v in os.environ.items() if k not in ("GOBIN", "GOFLAGS", "GOWORK")}
    env.update(
        GOPATH=str(root / "path"),
        GOMODCACHE=str(root / "mod"),
        GOCACHE=str(root / "build"),
        GOFLAGS="-modcacherw -buildvcs=false -trimpath",
        GOWORK="off",
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
    )
    return env


def cache_size() -> dict[str, int]:
    """Bytes on disk (allocated blocks) per top-level cache entry."""
    sizes = {}
    for entry in sorted(cache_root().iterdir()) if cache_root().exists() else []:
        total = 0
        for dirpath, _dirs, files in os.walk(entry):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
                except OSError:
                    pass
        sizes[entry.name] = total
    return sizes


def dir_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


# ------------------------------------------------------------------ commands and downloads


def run(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None, capture: bool = False,
        check: bool = True, timeout: float | None = None, user: str | None = None) -> subprocess.CompletedProcess:
    ids = {"user": user, "group": user, "extra_groups": []} if user else {}
    try:
        cp = subprocess.run(cmd, env=env, cwd=cwd, text=True, timeout=timeout, **ids,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.STDOUT if capture else None)
    except FileNotFoundError as e:
        raise TestbedError(f"{cmd[0]} is not installed ({e}); install it and retry") from e
    if check and cp.returncode != 0:
        out = (cp.stdout or "")[-3000:] if capture else ""
        raise TestbedError(f"`{' '.join(cmd[:4])} ...` failed with exit code {cp.returncode}\n{out}")
    return cp


def apt_install(*packages: str, log=logger("testbed")) -> None:
    """apt-get install without starting the packages' own services (policy-rc.d says no)."""
    if os.geteuid() != 0:
        raise TestbedError(f"installing {', '.join(packages)} needs root (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = Path("/usr/sbin/policy-rc.d")
    created = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\n# datamesh testbed: do not start services during apt-get install\nexit 101\n")
        policy.chmod(0o755)
        created = True
    try:
        log(f"apt-get install {' '.join(packages)}")
        run(["apt-get", "update", "-q"], env=env, capture=True)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env, capture=True)
    finally:
        if created:
            policy.unlink(missing_ok=True)


def url_exists(url: str) -> bool:
    req = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status == 200
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def download(url: str, dest: Path, sha1: bool = True, log=logger("testbed")) -> int:
    """Stream url to dest, check Maven's .sha1 when asked; returns the size in bytes."""
    log(f"download {url}")
    h = hashlib.sha1()
    size = 0
    next_report = 200 << 20
    with urllib.request.urlopen(url, timeout=120) as r, open(dest, "wb") as out:
        total = int(r.headers.get("Content-Length") or 0)
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            out.write(chunk)
            h.update(chunk)
            size += len(chunk)
            if size >= next_report:
                log(f"  {size >> 20} MiB of {total >> 20} MiB")
                next_report += 200 << 20
    if sha1:
        with urllib.request.urlopen(url + ".sha1", timeout=60) as r:
            expected = r.read().decode().split()[0].strip()
        if expected != h.hexdigest():
            dest.unlink(missing_ok=True)
            raise TestbedError(f"checksum mismatch for {url}: expected {expected}, got {h.hexdigest()}")
    return size


def maven_url(group: str, artifact: str, version: str, ext: str, classifier: str = "") -> str:
    suffix = f"-{classifier}" if classifier else ""
    return f"{MAVEN_REPO}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}{suffix}.{ext}"


# ------------------------------------------------------------------ waiting and processes


def wait_until(what: str, predicate, timeout: float, proc: subprocess.Popen | None = None,
               log_file: Path | None = None, interval: float = 0.25, errors: tuple = (Exception,)):
    """Poll predicate() until it returns something true; fail naming `what` after `timeout` seconds,
    or at once when `proc` exits (with the last lines of `log_file`). An exception of `errors`
    raised by the predicate means "not yet"."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise TestbedError(f"{what}: the process exited with code {proc.returncode}{tail(log_file)}")
        try:
            result = predicate()
            if result:
                return result
        except errors as e:  # noqa: BLE001 - any failure of the probe means "not yet"
            last_error = e
        time.sleep(interval)
    last = f" (last error: {last_error})" if last_error else ""
    raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}{last}{tail(log_file)}")


def tail(log_file: Path | None, lines: int = 25) -> str:
    if not log_file or not Path(log_file).exists():
        return ""
    text = Path(log_file).read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log_file}:\n" + "\n".join(text)


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of pid, from /proc; None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while pid runs; a zombie (ended, not yet reaped) counts as gone."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def runs_from(pid: int, marker: Path | str) -> bool:
    """True if the command line of `pid` mentions `marker` (so a stale pid is never someone else's)."""
    try:
        return str(marker) in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False


def stop_process(pid: int, grace: float = 15) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds (at once if 0); returns once the process has ended."""
    steps = [(signal.SIGTERM, grace)] if grace else []
    for sig, wait in steps + [(signal.SIGKILL, 10)]:
        try:
            os.kill(pid, sig)
            wait_until(f"process {pid} to exit", lambda: not pid_alive(pid), wait, interval=0.2, errors=())
            break
        except ProcessLookupError:
            break
        except TestbedError:
            if sig == signal.SIGKILL:
                raise
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    except ChildProcessError:
        pass
