"""Trino 476, the release the trino role deploys (trinodb/trino:476), from Maven Central's
io.trino:trino-server tarball, on Temurin 25 (TRINO_JAVA_HOME, for Trino and its CLI alone; 476
wants Java 24+, its image ships 24; a missing JDK is refused naming the path). Only the hive,
postgresql and geospatial plugins are kept (476's PostgreSQL connector needs geospatial's Geometry
type). DATAMESH_TESTBED_TRINO=N,M picks others (the first cached or served wins); 435 is not
served here (HTTP 404 for trino-server:435 and its jars).

Differences from the pod (and why): `bin/launcher --etc-dir <run>/trino/etc ... run`: the HTTP
server binds the service address (`-Dnode.bind-ip`, `-Dnode.internal-address`) instead of the
pod's 0.0.0.0, and `-Dnode.data-dir` points at the run folder instead of /data/trino. HOSTNAME
(node.id's ${ENV:HOSTNAME}) is a pod-like name, trino-coordinator-0. Java 25 where the image has 24.
The files' pod paths (/etc/trino/rules.json, the password file and the keystore from the Secrets)
name their places in the run folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from datamesh import probes
from testbed.addresses import check_loopback, ip_of
from testbed.common import (MAVEN_REPO, TestbedError, build_atomically, component_dir, download, logger, maven_url,
                            tail, url_exists, wait_until)
from testbed.native import base_env, native_env, native_path, place_config, translate_text
from testbed.processes import Procs, run_dir, stop_one

TRINO_VERSIONS = tuple(v for v in os.environ.get("DATAMESH_TESTBED_TRINO", "476").split(",") if v)
# the rest is deleted after unpacking; postgresql needs geospatial (476); the file password
# authenticator (security.trino_auth) is password-authenticators' (file-based access control is built in)
TRINO_PLUGINS = ("hive", "postgresql", "geospatial", "password-authenticators")
# Trino 476 needs Java 24 or newer (trinodb/trino:476 ships its own); Temurin 25 lies here on these machines
TRINO_JAVA_HOME = Path(os.environ.get("DATAMESH_TESTBED_TRINO_JAVA", "/usr/lib/jvm/temurin-25-jdk-amd64"))
TRINO_ETC_POD, TRINO_DATA_POD = "/etc/trino", "/data/trino"  # trinodb/trino's config and data folders
TRINO_CHECK_IP = "127.42.1.13"  # a second Trino for check_trino(), never in /etc/hosts

log = logger("services")


def trino_dir(version: str) -> Path:
    """The cached server and CLI of `version`, keyed by the plugins kept, so a new plugin is a new build."""
    return component_dir("trino", f"{version}-" + "-".join(sorted(p[:4] for p in TRINO_PLUGINS)))


def trino_java() -> Path:
    """The Java that runs Trino (and its CLI): Trino 476 refuses anything older than 24."""
    if not (TRINO_JAVA_HOME / "bin" / "java").exists():
        raise TestbedError(f"Trino needs Java 24 or newer and none is at {TRINO_JAVA_HOME}: install a JDK 24+ there "
                           "or point DATAMESH_TESTBED_TRINO_JAVA at one")
    return TRINO_JAVA_HOME


def trino_version() -> str:
    """The first of TRINO_VERSIONS that is cached, else the first that Maven Central serves."""
    for v in TRINO_VERSIONS:
        if (trino_dir(v) / "server" / "bin" / "launcher").exists():
            return v
    for v in TRINO_VERSIONS:
        if url_exists(maven_url("io.trino", "trino-server", v, "tar.gz")):
            if v != TRINO_VERSIONS[0]:
                log(f"Trino {TRINO_VERSIONS[0]} is not served by {MAVEN_REPO} (404); using Trino {v}")
            return v
        log(f"io.trino:trino-server:{v}:tar.gz is not served by {MAVEN_REPO} (HTTP 404)")
    raise TestbedError(f"none of Trino {', '.join(TRINO_VERSIONS)} is served by {MAVEN_REPO}; "
                       "set DATAMESH_TESTBED_TRINO to a served version")


def cached() -> bool:
    return any((trino_dir(v) / "server").exists() for v in TRINO_VERSIONS)


def install() -> Path:
    version = trino_version()

    def build(tmp: Path) -> None:
        tarball = tmp / "trino-server.tar.gz"
        download(maven_url("io.trino", "trino-server", version, "tar.gz"), tarball, log=log)
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="tar") if hasattr(tarfile, "data_filter") else tf.extractall(tmp)
        tarball.unlink()
        (tmp / f"trino-server-{version}").rename(tmp / "server")
        for plugin in (tmp / "server" / "plugin").iterdir():
            if plugin.name not in TRINO_PLUGINS:
                shutil.rmtree(plugin)
        (tmp / "cli").mkdir()
        cli = tmp / "cli" / f"trino-cli-{version}-executable.jar"
        download(maven_url("io.trino", "trino-cli", version, "jar", "executable"), cli, log=log)

    return build_atomically(trino_dir(version), build)


def trino_cli() -> list[str]:
    """The command that runs the Trino CLI (append --server ... --execute ...)."""
    version = trino_version()
    jar = trino_dir(version) / "cli" / f"trino-cli-{version}-executable.jar"
    return [str(trino_java() / "bin" / "java"), "-jar", str(jar)]


def start(procs: Procs, cfg: dict, *, base: Path | None = None, name: str = "trino",
          ip: str | None = None, overrides: tuple[str, ...] = ()) -> tuple:
    """bin/launcher run with the pod's /etc/trino and env; the server binds the service address.
    Returns what wait() takes: (process, start time, URL, log file, log offset)."""
    t0 = time.monotonic()
    home = install() / "server"
    java = trino_java()
    base = base or run_dir() / "trino"
    base.mkdir(parents=True, exist_ok=True)
    paths = cfg["paths"]
    for target in place_config(cfg, base).values():  # files naming files (rules, password file, keystore)
        target.write_text(translate_text(target.read_text(), paths, base))
    etc, data = native_path(TRINO_ETC_POD, paths, base), native_path(TRINO_DATA_POD, paths, base)
    data.mkdir(parents=True, exist_ok=True)
    svc = cfg["service"][0]
    ip = ip or ip_of(svc["host"])
    check_loopback(ip)
    env = base_env(native_env(cfg, base), java=java)
    # the launcher (airlift's, a Go binary since Trino 47x) takes its options before the command
    args = [str(home / "bin" / "launcher"), f"--etc-dir={etc}", f"--data-dir={data}", f"--jvm-dir={java}",
            f"-Dnode.data-dir={data}", f"-Dnode.bind-ip={ip}", f"-Dnode.internal-address={ip}",
            *[f"-D{o}" for o in overrides], "run"]
    log_file = base / "trino.log"
    since = log_file.stat().st_size if log_file.exists() else 0
    p = procs.start(name, args, env=env, cwd=base, log_file=log_file)
    return p, t0, f"http://{ip}:{svc['target_port']}", log_file, since


def wait(p: subprocess.Popen, t0: float, url: str, log_file: Path, since: int = 0, timeout: float = 240) -> float:
    """Until /v1/info says "starting": false; if Trino exits first, its own error is in the message."""

    def ready() -> bool:
        status, body = probes.http_get(f"{url}/v1/info")
        return status == 200 and json.loads(body).get("starting") is False

    try:
        wait_until(f"Trino {url}", ready, timeout, p, None, interval=0.5)
    except TestbedError as e:
        raise TestbedError(f"{e}\n{trino_error(log_file, since)}") from None
    return time.monotonic() - t0


def trino_error(log_file: Path, since: int = 0) -> str:
    """Trino's own words about why it stopped: its ERROR lines and the errors they list."""
    if not log_file.exists():
        return ""
    with open(log_file, errors="replace") as fh:
        fh.seek(since)
        lines = fh.read().splitlines()
    picked: list[str] = []
    seen: set[str] = set()
    for line in lines:
        if "\tERROR\t" in line or re.match(r"^\d+\) ", line) or line.startswith("Caused by: "):
            key = re.sub(r"^(\d+\) |Caused by: )", "", line.strip())
            if key not in seen and "same stack trace as error" not in key:
                seen.add(key)
                picked.append(line.rstrip())
    if not picked:
        return tail(log_file)
    return f"Trino's errors ({log_file}):\n" + "\n".join(picked[:20])


def check_trino(cfg: dict, base: Path, timeout: float = 240) -> float:
    """Start a second Trino with `cfg` in its own run folder `base` (on TRINO_CHECK_IP, discovering
    itself), wait until it is ready and stop it; returns its start time. When Trino refuses the
    config, raises TestbedError with Trino's own error."""
    procs = Procs()
    name = "trino-check"
    port = cfg["service"][0]["target_port"]
    started = start(procs, cfg, base=base, name=name, ip=TRINO_CHECK_IP,
                    overrides=(f"discovery.uri=http://{TRINO_CHECK_IP}:{port}",))
    try:
        return wait(*started, timeout=timeout)
    finally:
        stop_one(name)
        procs = Procs()
        procs.entries.pop(name, None)
        procs.save()
