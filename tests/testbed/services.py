"""Service testbed: the platform's real programs, run natively as plain processes.

No container runtime is reachable here, so each component of the platform runs as the program its
image ships, installed from a package registry, with the config the roles render for the
docker-desktop inventory (tests/testbed/rendered.py: the files each pod mounts, byte for byte, its
resolved env, its command, its Services), on the in-cluster name it has in Kubernetes:

    service                         name (port)                                              from
    PostgreSQL 15 x5                postgres-sales.data-platform.svc.cluster.local (5432)    Debian postgresql-15
                                    postgres-marketing / postgres-hive (data-platform),
                                    postgres.sales-domain, postgres.marketing-domain
    S3 object store (versitygw)     minio.data-platform.svc.cluster.local (9000)             Go module proxy
      + its bucket Job's script     + NodePort 127.0.0.1:30082 (console: WebUI on /ui/)     PyPI (awscli)
    Hive Metastore 4.0.1            hive-metastore.data-platform.svc.cluster.local (9083)    Maven Central
    Trino 476                       trino-coordinator.data-platform.svc.cluster.local (8080) Maven Central
                                    + NodePort 127.0.0.1:30081
    JupyterHub 4.1.6 + CHP 4.6.1    hub.jupyterhub.svc.cluster.local (8081),                 PyPI, npm
                                    proxy-api.jupyterhub.svc.cluster.local (8001),
                                    proxy-public.jupyterhub.svc.cluster.local (80 -> 8000)
                                    + NodePort 127.0.0.1:30080
    nginx (dbt docs)                dbt-docs.data-platform.svc.cluster.local (80 -> 8080)    Debian nginx-light
                                    + NodePort 127.0.0.1:30084

Each name gets its own loopback address (127.42.1.x; all of 127/8 is loopback on Linux, so a program
binds it without creating an interface alias) and a line in a marked block of /etc/hosts
(`# BEGIN datamesh testbed` ... `# END datamesh testbed`), which `down()` removes exactly. The
NodePorts, and Service ports that differ from the port the program listens on (the rendered
Services' port -> targetPort), are served by services/forward.py (a small asyncio TCP forwarder
standing in for kube-proxy).

Each config section carries `paths`, the table that says where a path the pod sees lives in the run
folder (tests/testbed/rendered.py keeps one per service); files are placed, env values and
command arguments translated with it, and a mounted file no entry covers is refused.

Downloads and builds are cached by version under ${DATAMESH_CACHE:-~/.cache/datamesh}/testbed/
<name>-<version>/, each built in a temporary directory and renamed into place. The run folder
(config files, data, logs, pids.json, config.json) is .testbed/services/ in the work tree; data
survive `down()` like PersistentVolumes, `down(purge=True)` removes them. Generated Secrets keep
the values of the last run (config.json), as live Secrets do across `invoke up`.

Versions and why:
- Trino 476, the release the trino role deploys (trinodb/trino:476), from Maven Central's
  io.trino:trino-server tarball, on Temurin 25 (TRINO_JAVA_HOME, for Trino and its CLI alone; 476
  wants Java 24+, its image ships 24; a missing JDK is refused naming the path). Only the hive,
  postgresql and geospatial plugins are kept (476's PostgreSQL connector needs geospatial's
  Geometry type). DATAMESH_TESTBED_TRINO=N,M picks others (the first cached or served wins); 435
  is not served here (HTTP 404 for trino-server:435 and its jars).
- Hive Metastore 4.0.1, the release of apache/hive:4.0.1, from Maven Central's
  org.apache.hive:hive-standalone-metastore-server:4.0.1 bin tarball (4.1.0 and 4.2.0 answer 404
  there). The image runs Java 8, which no registry here serves; the testbed runs Debian's Java 17,
  which this release's metastore and schematool take without --add-opens or extra jars. The
  tarball lacks what the image's full Hive and Hadoop 3.3.6 bring: services/hive-metastore-pom.xml
  adds them (Hadoop 3.3.6 client and HDFS jars, hadoop-aws with its AWS SDK bundle, hive-exec core,
  hive-metastore, hive-common 4.0.1).
- Object store: versitygw (Apache-2.0) from the Go module proxy at VERSITYGW_VERSION, the release the
  minio role deploys by default (images.versitygw), posix backend: one static binary, about four
  minutes to build with a cold Go cache, starts in under a second, about 35 MB of memory. MinIO is
  AGPL and is not built. The bucket Job's script runs with the AWS CLI from PyPI (awscli
  AWSCLI_VERSION, the one the jupyterhub-dbt image ships, in a venv of its own).

Differences from a pod (and why); everything not listed is the rendered file, env or command:
- Trino: `bin/launcher --etc-dir <run>/trino/etc ... run`: the HTTP server binds the service
  address (`-Dnode.bind-ip`, `-Dnode.internal-address`) instead of the pod's 0.0.0.0, and
  `-Dnode.data-dir` points at the run folder instead of /data/trino. HOSTNAME (node.id's
  ${ENV:HOSTNAME}) is a pod-like name, trino-coordinator-0. Java 25 where the image has 24.
- Hive Metastore: the pod's init container prepare-schema runs natively before every start (its
  script with Debian's psql, the image's being the postgres one); fetch-jdbc-driver runs natively
  once per version and checksum, cached as the pod's jars volume keeps the jar; link-s3a-jars does
  not run: hadoop-aws and the AWS SDK bundle come from Maven Central (services/
  hive-metastore-pom.xml). The role's start-metastore.sh runs as the container's command,
  unchanged except that $HIVE_HOME/bin/schematool and its `exec /entrypoint.sh` name the testbed's
  stand-ins for the image's (written below: the same schematool class of Hive 4.0.1, and the
  image entrypoint's IS_RESUME/initOrUpgradeSchema logic, then the metastore). The metastore
  listens on *:9083. JVM: Java 17 for the image's 8, a tmp and log folder in the run folder.
- The object store (minio.server: versitygw, docker-desktop's choice): the pod's versitygw
  arguments and env as rendered, except that `--port :P` binds the service address (ip:P) instead
  of every address, the posix folder is in the run folder, and `--sidecar` keeps the metadata in a
  folder where the run folder's filesystem has no user xattrs. Its init container data-folder
  (mkdir) runs natively. As in the pod, a posix backend: "directory marker" objects of non-empty
  folders cannot be deleted (ErrDirectoryNotEmpty). With minio.server: minio the stand-in is
  versitygw, MinIO's MINIO_ROOT_USER/MINIO_ROOT_PASSWORD becoming its ROOT_ACCESS_KEY/
  ROOT_SECRET_KEY and MinIO's data folder its posix folder; no console then.
- The bucket Job runs its rendered script (files/minio/buckets.sh) unchanged, natively, with the
  Job's env; `aws` is the AWS CLI v1 from PyPI where the Job's image has v2 (the s3api commands the
  script uses are the same in both).
- PostgreSQL: the image's entrypoint is done here: initdb with POSTGRES_USER/POSTGRES_PASSWORD into
  PGDATA (translated), scram-sha-256 for TCP (the image trusts 127.0.0.1, and every testbed client
  is on 127/8, so password checks would otherwise be skipped), trust on the unix socket, locale
  C.UTF-8; then POSTGRES_DB and the /docker-entrypoint-initdb.d/*.sql scripts, once.
- nginx: Debian's nginx-light (1.22) instead of nginx-unprivileged 1.27 (alpine); the image's
  nginx.conf is replaced by an equivalent one that includes the server configs, whose `listen`
  lines are narrowed to the service address (IPv6 listens dropped) and whose pod paths
  (/usr/share/nginx/html, /usr/share/nginx/placeholder) point at the run folder.
- JupyterHub: the role's jupyterhub_config.py is loaded unchanged with the hub container's env, then
  a testbed file sets a local spawner (jupyterhub's SimpleLocalProcessSpawner, single-user servers
  as root with --allow-root, homes in the run folder), binds the hub to its service address instead
  of 0.0.0.0 and maps /srv/jupyterhub to the run folder. KubeSpawner is installed so the config's
  KubeSpawner settings load. The proxy runs the proxy pod's command with --ip/--api-ip narrowed
  from 0.0.0.0 to the proxy-public and proxy-api addresses.
- No Grafana (30083): AGPL.

CLI:  python -m tests.testbed.services install [--only NAMES] | up [--inventory NAME | --config FILE]
      | down [--purge] | status
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from string import Template

from tests.testbed import cache_root, component_dir

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "services"
REPO = HERE.parent.parent

# ------------------------------------------------------------------ versions

POSTGRES_MAJOR = "15"
TRINO_VERSIONS = tuple(v for v in os.environ.get("DATAMESH_TESTBED_TRINO", "476").split(",") if v)
TRINO_PLUGINS = ("hive", "postgresql", "geospatial")  # the rest is deleted after unpacking; postgresql needs geospatial (476)
HIVE_VERSION = "4.0.1"       # apache/hive:4.0.1, the release the role deploys
HADOOP_VERSION = "3.3.6"     # that image's /opt/hadoop (Hive 4.0.1's hadoop.version)
AWS_SDK_VERSION = "1.12.367"  # the bundle Hadoop 3.3.6's distribution ships beside hadoop-aws
VERSITYGW_VERSION = os.environ.get("DATAMESH_TESTBED_VERSITYGW", "v1.8.0")
AWSCLI_VERSION = "1.46.3"  # the bucket Job's `aws`; the jupyterhub-dbt image pins the same release
JUPYTERHUB_VERSION = "4.1.6"
KUBESPAWNER_VERSION = "6.2.0"
JUPYTERLAB_VERSION = "4.2.5"
CHP_VERSION = "4.6.1"
JAVA17_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")
# Trino 476 needs Java 24 or newer (trinodb/trino:476 ships its own); Temurin 25 lies here on these machines
TRINO_JAVA_HOME = Path(os.environ.get("DATAMESH_TESTBED_TRINO_JAVA", "/usr/lib/jvm/temurin-25-jdk-amd64"))
PG_BIN = Path(f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin")
MAVEN_REPO = os.environ.get("DATAMESH_MAVEN_REPO", "https://repo.maven.apache.org/maven2").rstrip("/")

COMPONENTS = ("postgres", "s3", "hive", "trino", "jupyterhub", "nginx")

# ------------------------------------------------------------------ names and addresses

HOSTS: dict[str, str] = {
    "postgres-sales.data-platform.svc.cluster.local": "127.42.1.1",
    "postgres-marketing.data-platform.svc.cluster.local": "127.42.1.2",
    "postgres-hive.data-platform.svc.cluster.local": "127.42.1.3",
    "postgres.sales-domain.svc.cluster.local": "127.42.1.4",
    "postgres.marketing-domain.svc.cluster.local": "127.42.1.5",
    "minio.data-platform.svc.cluster.local": "127.42.1.10",
    "hive-metastore.data-platform.svc.cluster.local": "127.42.1.11",
    "trino-coordinator.data-platform.svc.cluster.local": "127.42.1.12",
    "hub.jupyterhub.svc.cluster.local": "127.42.1.20",
    "proxy-api.jupyterhub.svc.cluster.local": "127.42.1.21",
    "proxy-public.jupyterhub.svc.cluster.local": "127.42.1.22",
    "dbt-docs.data-platform.svc.cluster.local": "127.42.1.30",
}

S3_HOST = "minio.data-platform.svc.cluster.local"
HIVE_HOST = "hive-metastore.data-platform.svc.cluster.local"
TRINO_HOST = "trino-coordinator.data-platform.svc.cluster.local"
HUB_HOST = "hub.jupyterhub.svc.cluster.local"
PROXY_API_HOST = "proxy-api.jupyterhub.svc.cluster.local"
PROXY_PUBLIC_HOST = "proxy-public.jupyterhub.svc.cluster.local"
DOCS_HOST = "dbt-docs.data-platform.svc.cluster.local"

HOSTS_FILE = Path(os.environ.get("DATAMESH_HOSTS_FILE", "/etc/hosts"))
HOSTS_BEGIN = "# BEGIN datamesh testbed"
HOSTS_END = "# END datamesh testbed"
MARKER_VAR = "DATAMESH_TESTBED_SERVICES"


def log(msg: str) -> None:
    print(f"[services] {msg}", file=sys.stderr, flush=True)


class TestbedError(RuntimeError):
    """A testbed step failed; the message says which and what to do."""


# ------------------------------------------------------------------ paths


def run_dir() -> Path:
    return Path(os.environ.get("DATAMESH_SERVICES_RUN") or REPO / ".testbed" / "services")


def pids_file() -> Path:
    return run_dir() / "pids.json"


@contextlib.contextmanager
def cache_lock():
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".services.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_atomically(final: Path, build_fn) -> Path:
    """Run build_fn(tmpdir) and rename tmpdir to final; a killed build leaves only a .tmp-* folder."""
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        build_fn(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _clean_stale_tmp() -> None:
    for p in cache_root().glob(".tmp-*"):
        # a .tmp dir whose builder died; builds hold cache_lock, so none is live here
        shutil.rmtree(p, ignore_errors=True)


# ------------------------------------------------------------------ small helpers


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


def apt_install(*packages: str) -> None:
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


def download(url: str, dest: Path, sha1: bool = True) -> int:
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


def dir_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


# ------------------------------------------------------------------ install: system packages


def java17() -> Path:
    if not (JAVA17_HOME / "bin" / "java").exists():
        apt_install("openjdk-17-jre-headless")
    return JAVA17_HOME


def hive_java() -> Path:
    """The Java that runs the metastore. apache/hive:4.0.1 ships Java 8, which no registry here serves;
    Hive 4.0.1's standalone metastore runs unchanged on Debian's Java 17 (no --add-opens needed)."""
    return java17()


def trino_java() -> Path:
    """The Java that runs Trino (and its CLI): Trino 476 refuses anything older than 24."""
    if not (TRINO_JAVA_HOME / "bin" / "java").exists():
        raise TestbedError(f"Trino needs Java 24 or newer and none is at {TRINO_JAVA_HOME}: install a JDK 24+ there "
                           "or point DATAMESH_TESTBED_TRINO_JAVA at one")
    return TRINO_JAVA_HOME


def install_postgres() -> Path:
    if not (PG_BIN / "postgres").exists():
        apt_install(f"postgresql-{POSTGRES_MAJOR}")
    return PG_BIN


def install_nginx() -> Path:
    nginx = Path("/usr/sbin/nginx")
    if not nginx.exists():
        apt_install("nginx-light")
    return nginx


# ------------------------------------------------------------------ install: Trino


def trino_version() -> str:
    """The first of TRINO_VERSIONS that is cached, else the first that Maven Central serves."""
    for v in TRINO_VERSIONS:
        if (component_dir("trino", v) / "server" / "bin" / "launcher").exists():
            return v
    for v in TRINO_VERSIONS:
        if url_exists(maven_url("io.trino", "trino-server", v, "tar.gz")):
            if v != TRINO_VERSIONS[0]:
                log(f"Trino {TRINO_VERSIONS[0]} is not served by {MAVEN_REPO} (404); using Trino {v}")
            return v
        log(f"io.trino:trino-server:{v}:tar.gz is not served by {MAVEN_REPO} (HTTP 404)")
    raise TestbedError(f"none of Trino {', '.join(TRINO_VERSIONS)} is served by {MAVEN_REPO}; "
                       "set DATAMESH_TESTBED_TRINO to a served version")


def install_trino() -> Path:
    version = trino_version()

    def build(tmp: Path) -> None:
        tarball = tmp / "trino-server.tar.gz"
        download(maven_url("io.trino", "trino-server", version, "tar.gz"), tarball)
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="tar") if hasattr(tarfile, "data_filter") else tf.extractall(tmp)
        tarball.unlink()
        (tmp / f"trino-server-{version}").rename(tmp / "server")
        for plugin in (tmp / "server" / "plugin").iterdir():
            if plugin.name not in TRINO_PLUGINS:
                shutil.rmtree(plugin)
        (tmp / "cli").mkdir()
        cli = tmp / "cli" / f"trino-cli-{version}-executable.jar"
        download(maven_url("io.trino", "trino-cli", version, "jar", "executable"), cli)

    return build_atomically(component_dir("trino", version), build)


def trino_cli() -> list[str]:
    """The command that runs the Trino CLI (append --server ... --execute ...)."""
    version = trino_version()
    jar = component_dir("trino", version) / "cli" / f"trino-cli-{version}-executable.jar"
    return [str(trino_java() / "bin" / "java"), "-jar", str(jar)]


# ------------------------------------------------------------------ install: Hive Metastore


def hive_home() -> Path:
    # the classpath is part of the cache key: a changed pom gets a new folder, never a stale one
    digest = hashlib.sha256((ASSETS / "hive-metastore-pom.xml").read_bytes()).hexdigest()[:8]
    return component_dir("hive-metastore", f"{HIVE_VERSION}-{digest}")


def install_hive() -> Path:
    def build(tmp: Path) -> None:
        tarball = tmp / "metastore.tar.gz"
        download(maven_url("org.apache.hive", "hive-standalone-metastore-server", HIVE_VERSION, "tar.gz", "bin"),
                 tarball)
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="tar") if hasattr(tarfile, "data_filter") else tf.extractall(tmp)
        tarball.unlink()
        (tmp / f"apache-hive-metastore-{HIVE_VERSION}-bin").rename(tmp / "dist")
        pom = Template((ASSETS / "hive-metastore-pom.xml").read_text()).safe_substitute(
            HADOOP_VERSION=HADOOP_VERSION, HIVE_VERSION=HIVE_VERSION,
            AWS_SDK_VERSION=AWS_SDK_VERSION)
        (tmp / "pom.xml").write_text(pom)
        mvn = shutil.which("mvn")
        if not mvn:
            apt_install("maven")
            mvn = "mvn"
        log(f"mvn dependency:copy-dependencies (Hadoop {HADOOP_VERSION}, hadoop-aws, AWS SDK {AWS_SDK_VERSION}); "
            "the PostgreSQL JDBC driver comes from the role's init container (hive_aux_jars)")
        env = dict(os.environ, JAVA_HOME=str(hive_java()))
        run([mvn, "-B", "-q", f"-Dmaven.repo.local={cache_root() / 'm2'}", "-f", str(tmp / "pom.xml"),
             "dependency:copy-dependencies", f"-DoutputDirectory={tmp / 'deps'}", "-DincludeScope=runtime"],
            env=env, capture=True, timeout=1800)

    return build_atomically(hive_home(), build)


# ------------------------------------------------------------------ install: object store


def go_env() -> dict[str, str]:
    root = cache_root() / "go"
    env = dict(os.environ)
    env.update(GOPATH=str(root / "path"), GOMODCACHE=str(root / "mod"), GOCACHE=str(root / "build"),
               GOFLAGS="-mod=mod", CGO_ENABLED="0")
    env.pop("GOBIN", None)
    return env


def install_s3() -> Path:
    """versitygw built from the Go module proxy, and the AWS CLI the bucket Job's script calls
    (install_awscli); returns versitygw's folder."""
    def build(tmp: Path) -> None:
        if not shutil.which("go"):
            raise TestbedError("go is not installed; the object store (versitygw) is built with `go install`")
        env = go_env()
        env["GOBIN"] = str(tmp / "bin")
        log(f"go install github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}")
        run(["go", "install", "-trimpath", f"github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}"],
            env=env, capture=True, timeout=3600, cwd=tmp)

    install_awscli()
    return build_atomically(component_dir("versitygw", VERSITYGW_VERSION), build)


AWS_WRAPPER = """#!/bin/sh
# Written by tests/testbed/services.py: the AWS CLI of the venv beside this folder.
exec "$(dirname "$0")/../venv/bin/python" -m awscli "$@"
"""


def install_awscli() -> Path:
    """awscli from PyPI in a venv of its own, with the jupyterhub-dbt image's constraints (so the
    same releases of its dependencies); bin/aws runs it. The venv is built here and renamed: the
    wrapper finds it relative to itself."""
    def build(tmp: Path) -> None:
        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", str(venv)], capture=True)
        log(f"pip install awscli=={AWSCLI_VERSION}")
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--constraint", str(REPO / "files" / "images" / "jupyterhub-dbt" / "constraints.txt"),
             f"awscli=={AWSCLI_VERSION}"], capture=True, timeout=1800)
        (tmp / "bin").mkdir()
        (tmp / "bin" / "aws").write_text(AWS_WRAPPER)
        (tmp / "bin" / "aws").chmod(0o755)

    return build_atomically(component_dir("awscli", AWSCLI_VERSION), build)


# ------------------------------------------------------------------ install: JupyterHub + proxy


def install_jupyterhub() -> Path:
    def build(tmp: Path) -> None:
        venv = tmp / "venv"
        # the venv is built here and renamed; entry points are run as `python -m ...`, so the
        # absolute shebangs of its bin/ scripts (pointing at the temp path) are never used
        run([sys.executable, "-m", "venv", str(venv)], capture=True)
        py = str(venv / "bin" / "python")
        log(f"pip install jupyterhub=={JUPYTERHUB_VERSION} jupyterhub-kubespawner=={KUBESPAWNER_VERSION} "
            f"jupyterlab=={JUPYTERLAB_VERSION}")
        run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             f"jupyterhub=={JUPYTERHUB_VERSION}", f"jupyterhub-kubespawner=={KUBESPAWNER_VERSION}",
             f"jupyterlab=={JUPYTERLAB_VERSION}"], capture=True, timeout=1800)
        if not shutil.which("npm") or not shutil.which("node"):
            raise TestbedError("node and npm are needed for configurable-http-proxy (apt-get install nodejs npm)")
        log(f"npm install configurable-http-proxy@{CHP_VERSION}")
        (tmp / "chp").mkdir()
        run(["npm", "install", "--prefix", str(tmp / "chp"), "--no-audit", "--no-fund", "--omit=dev",
             "--loglevel=error", f"configurable-http-proxy@{CHP_VERSION}"], capture=True, timeout=1800)

    return build_atomically(component_dir("jupyterhub", JUPYTERHUB_VERSION), build)


# ------------------------------------------------------------------ install: all

INSTALLERS = {
    "postgres": install_postgres,
    "s3": install_s3,
    "hive": install_hive,
    "trino": install_trino,
    "jupyterhub": install_jupyterhub,
    "nginx": install_nginx,
}


def install(only=None) -> dict[str, Path]:
    """Download/build what is missing (idempotent); returns {component: path}."""
    names = _select(only)
    paths: dict[str, Path] = {}
    timings: dict[str, float] = {}
    with cache_lock():
        _clean_stale_tmp()
        if "hive" in names:
            hive_java()
        if "trino" in names:
            trino_java()
        for name in names:
            t0 = time.monotonic()
            before = _cached(name)
            paths[name] = INSTALLERS[name]()
            timings[name] = time.monotonic() - t0
            state = "cached" if before else f"installed in {timings[name]:.1f}s"
            if not before and cache_root() in paths[name].parents:
                state += f" ({dir_size(paths[name]) / 2**20:.0f} MiB)"
            log(f"{name:<10} {state:<22} {paths[name]}")
    return paths


def _cached(name: str) -> bool:
    if name == "postgres":
        return (PG_BIN / "postgres").exists()
    if name == "nginx":
        return Path("/usr/sbin/nginx").exists()
    if name == "trino":
        return any((component_dir("trino", v) / "server").exists() for v in TRINO_VERSIONS)
    if name == "hive":
        return hive_home().exists()
    if name == "s3":
        return component_dir("versitygw", VERSITYGW_VERSION).exists() and component_dir("awscli", AWSCLI_VERSION).exists()
    if name == "jupyterhub":
        return component_dir("jupyterhub", JUPYTERHUB_VERSION).exists()
    return False


def _select(only) -> list[str]:
    if only is None:
        return list(COMPONENTS)
    if isinstance(only, str):
        only = [s.strip() for s in only.split(",") if s.strip()]
    unknown = [n for n in only if n not in COMPONENTS]
    if unknown:
        raise TestbedError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}")
    return [n for n in COMPONENTS if n in only]


# ------------------------------------------------------------------ /etc/hosts


def hosts_block() -> str:
    lines = [HOSTS_BEGIN]
    for fqdn, ip in HOSTS.items():
        short = fqdn.removesuffix(".svc.cluster.local")  # name.namespace, as pods in other namespaces write it
        lines.append(f"{ip}\t{fqdn} {short}.svc {short}")
    lines.append(HOSTS_END)
    return "\n".join(lines) + "\n"


def _strip_block(text: str) -> str:
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.strip() == HOSTS_BEGIN:
            skipping = True
            continue
        if skipping and line.strip() == HOSTS_END:
            skipping = False
            continue
        if not skipping:
            out.append(line)
    return "".join(out)


def write_hosts() -> None:
    text = _strip_block(HOSTS_FILE.read_text())
    if text and not text.endswith("\n"):
        text += "\n"
    # written in place: /etc/hosts is often a bind mount that cannot be replaced by rename
    with open(HOSTS_FILE, "r+") as fh:
        fh.seek(0)
        fh.write(text + hosts_block())
        fh.truncate()


def remove_hosts() -> None:
    if not HOSTS_FILE.exists():
        return
    text = HOSTS_FILE.read_text()
    stripped = _strip_block(text)
    if stripped != text:
        with open(HOSTS_FILE, "r+") as fh:
            fh.seek(0)
            fh.write(stripped)
            fh.truncate()


def check_loopback(ip: str) -> None:
    """Binding 127.x.y.z works without an interface alias on Linux; fail early and clearly if not."""
    with socket.socket() as s:
        try:
            s.bind((ip, 0))
        except OSError as e:
            raise TestbedError(f"cannot bind {ip} ({e}); this kernel does not route all of 127/8 to lo: "
                               f"add it with `ip addr add {ip}/8 dev lo`") from e


# ------------------------------------------------------------------ process table


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


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of pid."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


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
        st = _proc_stat(pid)
        if st is None:
            continue
        if pid in leaders or st[1] in leaders:
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


def _tree_rss(name: str) -> int:
    e = Procs().entries.get(name)
    if not e:
        return 0
    pids = {p for p in testbed_pids() if p == e["pid"] or (_proc_stat(p) or (0, 0))[1] == e["pid"]}
    return rss_bytes(pids)


# ------------------------------------------------------------------ readiness


def wait_until(what: str, predicate, timeout: float, proc: subprocess.Popen | None = None,
               log_file: Path | None = None, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise TestbedError(f"{what}: the process exited with code {proc.returncode}"
                               f"{_tail(log_file)}")
        try:
            result = predicate()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - any failure of the probe means "not yet"
            last_error = e
        time.sleep(interval)
    raise TestbedError(f"{what} was not ready after {timeout:.0f}s (last error: {last_error}){_tail(log_file)}")


def _tail(log_file: Path | None, lines: int = 25) -> str:
    if not log_file or not Path(log_file).exists():
        return ""
    text = Path(log_file).read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log_file}:\n" + "\n".join(text)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    with contextlib.suppress(OSError):
        with socket.create_connection((host, port), timeout=timeout):
            return True
    return False


def http_get(url: str, headers: dict | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def thrift_get_all_databases(host: str, port: int = 9083, timeout: float = 5.0) -> list[str]:
    """One real metastore call, ThriftHiveMetastore.get_all_databases(), in the binary protocol."""
    name = b"get_all_databases"
    msg = struct.pack(">iI", -2147418111, len(name)) + name + struct.pack(">i", 1) + b"\x00"
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(msg)
        buf = b""

        def need(n: int) -> bytes:
            nonlocal buf
            while len(buf) < n:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("metastore closed the connection")
                buf += chunk
            out, buf = buf[:n], buf[n:]
            return out

        version_type = struct.unpack(">i", need(4))[0]
        mtype = version_type & 0xFF
        (nlen,) = struct.unpack(">i", need(4))
        need(nlen)
        need(4)  # seqid
        if mtype != 2:
            raise ConnectionError(f"metastore answered message type {mtype}, not REPLY")
        dbs: list[str] = []
        while True:
            ftype = need(1)[0]
            if ftype == 0:
                break
            (fid,) = struct.unpack(">h", need(2))
            if ftype == 15 and fid == 0:  # success: list<string>
                need(1)  # element type (string)
                (count,) = struct.unpack(">i", need(4))
                for _ in range(count):
                    (slen,) = struct.unpack(">i", need(4))
                    dbs.append(need(slen).decode())
            else:
                raise ConnectionError(f"metastore returned field {fid} of type {ftype} (an exception)")
        return dbs


# ------------------------------------------------------------------ config: the rendered one


def default_config(inventory: str | None = None) -> dict:
    """The config the roles render (tests/testbed/rendered.py). Generated Secrets keep the values of
    the last run, as a cluster's live Secrets keep theirs across `invoke up`."""
    from tests.testbed.rendered import config_from_render

    return config_from_render(inventory or "docker-desktop", live=previous_secrets())


def saved_config() -> dict:
    """The config of the last up(): what the running services were started with."""
    path = run_dir() / "config.json"
    if not path.exists():
        raise TestbedError(f"{path} is missing: start the testbed with `python -m tests.testbed.services up`")
    return json.loads(path.read_text())


def previous_secrets() -> dict:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((run_dir() / "config.json").read_text()).get("secrets") or {}
    return {}


def native_path(pod_path: str, paths: dict[str, str], base: Path) -> Path:
    """Where a path the pod sees lives in the run folder: the config's `paths` table (pod path ->
    folder under `base`), longest matching prefix first. A path no entry covers is refused."""
    best = ""
    for pod in paths:
        p = pod.rstrip("/")
        if (pod_path == p or pod_path.startswith(p + "/")) and len(p) > len(best):
            best = p
    if not best:
        raise TestbedError(f"the pod path {pod_path} has no entry in the config's paths table (pod path -> run "
                           f"folder): add one to the service's table in tests/testbed/rendered.py")
    rel = paths.get(best, paths.get(best + "/"))
    rest = pod_path[len(best):].lstrip("/")
    target = (base / rel / rest) if rest else base / rel
    if not Path(os.path.normpath(target)).is_relative_to(os.path.normpath(base)):
        raise TestbedError(f"the pod path {pod_path} maps to {target}, outside {base}")
    return target


def translate_text(text: str, paths: dict[str, str], base: Path) -> str:
    """Every pod path of the table that appears as a path in `text` replaced by its run-folder path."""
    if not paths:
        return text
    keys = sorted((p.rstrip("/") for p in paths), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w.-])")
    return pattern.sub(lambda m: str(native_path(m.group(1), paths, base)), text)


def place_config(section: dict, base: Path) -> dict[str, Path]:
    """Write the section's files where its `paths` table puts them (the folders they live in are
    emptied first, so a file the render no longer has does not linger) and create its other
    volumes' folders. Returns pod path -> written file."""
    paths = section.get("paths") or {}
    files: dict[str, str] = section.get("files") or {}
    targets = {pod: native_path(pod, paths, base) for pod in files}
    for target in targets.values():
        top = base / target.relative_to(base).parts[0]
        if top.is_dir() and not top.is_symlink() and top != target:
            shutil.rmtree(top)
    for pod, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[pod])
    for pod in section.get("volumes") or {}:
        target = native_path(pod, paths, base)
        if not target.exists():
            target.mkdir(parents=True, exist_ok=True)
    return targets


def native_env(section: dict, base: Path) -> dict[str, str]:
    """The section's resolved environment with pod paths in values translated to the run folder."""
    paths = section.get("paths") or {}
    return {k: translate_text(str(v), paths, base) for k, v in (section.get("env") or {}).items()}


def _ip(host: str) -> str:
    if host not in HOSTS:
        raise TestbedError(f"the testbed has no loopback address for {host}; add it to HOSTS in {__file__}")
    return HOSTS[host]


def _services(config: dict) -> list[dict]:
    """Every Service port of the config (rendered Services: host, port, target_port, node_port)."""
    out = []
    for section in config.values():
        if not isinstance(section, dict):
            continue
        out += section.get("service") or []
        out += (section.get("proxy") or {}).get("service") or []
        for inst in (section.get("instances") or {}).values():
            out += inst.get("service") or []
    return out


def _flag(args: list[str], flag: str, value: str) -> list[str]:
    """args with `flag=...` (or `flag ...`) given `value`."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a.startswith(flag + "="):
            out.append(f"{flag}={value}")
        elif a == flag and i + 1 < len(args):
            out += [flag, value]
            i += 1
        else:
            out.append(a)
        i += 1
    return out


def base_env(extra: dict | None = None, java: Path | None = None) -> dict[str, str]:
    path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "TZ": "UTC"}
    if java:
        env["JAVA_HOME"] = str(java)
        env["PATH"] = f"{java}/bin:{path}"
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


# ------------------------------------------------------------------ services


def _pg_env(password: str) -> dict[str, str]:
    return base_env({"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "2"})


def _psql(host: str, user: str, password: str, db: str, sql: str, *, socket_dir: Path | None = None) -> str:
    cmd = [str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-h", str(socket_dir or host),
           "-p", "5432", "-U", user, "-d", db, "-c", sql]
    return run(cmd, env=_pg_env(password), capture=True, timeout=30).stdout.strip()


PG_DATA_VOLUME = "/var/lib/postgresql/data"  # the image's data volume (PGDATA is pgdata/ under it)
PG_INITDB = "/docker-entrypoint-initdb.d"


def start_postgres(procs: Procs, cfg: dict) -> dict[str, float]:
    """Every instance of cfg["instances"], as the postgres image's entrypoint runs it: initdb with
    POSTGRES_USER/POSTGRES_PASSWORD on an empty PGDATA, then POSTGRES_DB and the init scripts, once."""
    install_postgres()
    base = run_dir() / "postgres"
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    _check_traversable(base, "postgres")
    started: dict[str, tuple] = {}
    for name, inst in cfg["instances"].items():
        t0 = time.monotonic()
        idir = base / name
        idir.mkdir(parents=True, exist_ok=True)
        scripts = place_config(inst, idir)
        env = native_env(inst, idir)
        data = Path(env.get("PGDATA") or native_path(PG_DATA_VOLUME, inst["paths"], idir))
        volume = native_path(PG_DATA_VOLUME, inst["paths"], idir)
        sock = idir / "run"
        fresh = not (data / "PG_VERSION").exists()
        for d in (idir, volume, sock):
            d.mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "postgres", "postgres")
        user, password = inst["user"], inst["password"]
        if fresh:
            if data.exists():
                shutil.rmtree(data)
            (idir / "initialized").unlink(missing_ok=True)
            pwfile = idir / "pwfile"
            pwfile.write_text(password + "\n")
            shutil.chown(pwfile, "postgres", "postgres")
            os.chmod(pwfile, 0o600)
            try:
                run([str(PG_BIN / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
                     "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                    user="postgres", capture=True, env=base_env(), cwd=idir)
            finally:
                pwfile.unlink(missing_ok=True)
            with open(data / "pg_hba.conf", "a") as fh:
                fh.write("host all all all scram-sha-256\n")  # as the image: every client host, by password
        ip = _ip(inst["fqdn"])
        check_loopback(ip)
        p = procs.start(name, [str(PG_BIN / "postgres"), "-D", str(data), "-c", f"listen_addresses={ip}",
                               "-c", "port=5432", "-c", f"unix_socket_directories={sock}"],
                        env=base_env(), cwd=idir, log_file=idir / "postgres.log", user="postgres",
                        stop_signal=signal.SIGINT)
        started[name] = (p, t0, sock, scripts)
    times = {}
    for name, (p, t0, sock, scripts) in started.items():
        inst = cfg["instances"][name]
        fqdn, db, user, password = inst["fqdn"], inst["database"], inst["user"], inst["password"]
        log_file = base / name / "postgres.log"
        wait_until(f"PostgreSQL {fqdn}", lambda: _psql(fqdn, user, password, "postgres", "SELECT 1") == "1",
                   60, p, log_file)
        marker = base / name / "initialized"
        if not marker.exists():
            # as the image's entrypoint: POSTGRES_DB, then the init scripts in name order, once
            exists = _psql("", user, password, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{db}'",
                           socket_dir=sock)
            if exists != "1":
                _psql("", user, password, "postgres", f'CREATE DATABASE "{db}"', socket_dir=sock)
            for pod_path in sorted(pp for pp in scripts if pp.startswith(PG_INITDB + "/")):
                if not pod_path.endswith(".sql"):
                    raise TestbedError(f"{fqdn}: init script {pod_path}: the testbed runs .sql init scripts only")
                run([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(sock), "-U", user,
                     "-d", db, "-f", str(scripts[pod_path])], env=_pg_env(password), capture=True, timeout=120)
                log(f"{fqdn}: {pod_path} applied to {db}")
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        wait_until(f"PostgreSQL {fqdn}/{db}", lambda: _psql(fqdn, user, password, db, "SELECT 1") == "1", 30, p,
                   log_file)
        times[name] = time.monotonic() - t0
    return times


def _check_traversable(path: Path, user: str) -> None:
    import pwd

    uid = pwd.getpwnam(user).pw_uid
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            raise TestbedError(f"{parent} is not searchable by the '{user}' user (mode {oct(st.st_mode & 0o777)}); "
                               f"set DATAMESH_SERVICES_RUN to a folder under a world-searchable path")


# MinIO's variables -> versitygw's (same meaning: the root login of the S3 API), for minio.server: minio
S3_ENV = {"MINIO_ROOT_USER": "ROOT_ACCESS_KEY", "MINIO_ROOT_PASSWORD": "ROOT_SECRET_KEY"}


def start_s3(procs: Procs, cfg: dict) -> float:
    """The object store the render chose (cfg["server"]): versitygw with its pod's arguments and env,
    or, for MinIO (AGPL, not built), versitygw with MinIO's root login and data folder. Then the
    minio role's bucket Job: its rendered script, run natively (run_bucket_job)."""
    t0 = time.monotonic()
    home = install_s3()
    base = run_dir() / "s3"
    base.mkdir(parents=True, exist_ok=True)
    place_config(cfg, base)
    paths = cfg.get("paths") or {"/data": "data"}
    svc = cfg["service"][0]
    ip, port = _ip(svc["host"]), svc["target_port"]
    check_loopback(ip)
    if cfg.get("server") == "versitygw":
        for init in cfg.get("init_containers") or []:  # data-folder: the posix folder, made as the pod makes it
            cmd = [translate_text(a, init["paths"], base) for a in init.get("command", []) + init.get("args", [])]
            run(cmd, env=base_env(native_env(init, base)), cwd=base, capture=True, timeout=60)
        args, data = _versitygw_args(cfg.get("args") or [], ip, paths, base)
        env = base_env(native_env(cfg, base))
    else:
        pod_args = cfg.get("args") or []
        data_pod = next((a for a in pod_args[1:] if a.startswith("/")), "/data") if pod_args[:1] == ["server"] else "/data"
        data = native_path(data_pod, paths, base)
        args = ["--port", f"{ip}:{port}", "--quiet", "posix", str(data)]
        env = base_env({S3_ENV[k]: v for k, v in native_env(cfg, base).items() if k in S3_ENV})
    if set(S3_ENV.values()) - set(env):
        raise TestbedError(f"the object store's env has no {' or '.join(S3_ENV.values())} "
                           f"(or MinIO's {' or '.join(S3_ENV)}): the root login is missing")
    data.mkdir(parents=True, exist_ok=True)
    if not _xattr_ok(data):  # versitygw keeps object metadata in user xattrs, or in a sidecar folder
        (base / "meta").mkdir(exist_ok=True)
        at = args.index("posix") + 1
        args[at:at] = ["--sidecar", str(base / "meta")]
    p = procs.start("s3", [str(home / "bin" / "versitygw"), *args], env=env, cwd=base,
                    log_file=base / "versitygw.log")
    client = s3_client(cfg["access_key"], cfg["secret_key"], f"{svc['host']}:{svc['port']}")
    wait_until(f"S3 {svc['host']}:{port}", lambda: client.list_buckets() is not None, 30, p, base / "versitygw.log")
    run_bucket_job(cfg["bucket_job"], base / "bucket-job")
    return time.monotonic() - t0


def _versitygw_args(args: list[str], ip: str, paths: dict[str, str], base: Path) -> tuple[list[str], Path]:
    """The pod's versitygw arguments for a native run, and its posix folder: every `--port :P` binds
    the service address (ip:P) instead of all addresses, pod paths point into the run folder."""
    out = []
    for i, arg in enumerate(args):
        if i and args[i - 1] in ("--port", "-p") and arg.startswith(":"):
            arg = f"{ip}{arg}"
        out.append(translate_text(arg, paths, base))
    if "posix" not in out[:-1]:
        raise TestbedError(f"the versitygw container's args {args} name no posix folder (`posix DIR`): "
                           "the testbed runs the posix backend the minio role renders")
    return out, Path(out[out.index("posix") + 1])


def run_bucket_job(job: dict, base: Path) -> None:
    """The minio role's bucket Job, natively: its command (sh -c files/minio/buckets.sh, as rendered)
    with the Job's env, its emptyDir (HOME) a fresh folder in `base`, and the AWS CLI from PyPI
    first on PATH. Its output goes to base/job.log; a failure is the Job's failure."""
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    place_config(job, base)
    env = base_env(native_env(job, base))
    env["PATH"] = f"{install_awscli() / 'bin'}{os.pathsep}{env['PATH']}"
    cmd = job.get("command", []) + job.get("args", [])
    out = run(cmd, env=env, cwd=base, capture=True, check=False, timeout=360)
    (base / "job.log").write_text(out.stdout or "")
    if out.returncode != 0:
        raise TestbedError(f"the minio role's bucket Job failed (exit code {out.returncode}; {base / 'job.log'}):\n"
                           f"{(out.stdout or '')[-3000:]}")
    log(f"s3: bucket job: {(out.stdout or 'ok').strip().splitlines()[-1]}")


def _xattr_ok(path: Path) -> bool:
    probe = path / ".xattr-probe"
    try:
        probe.write_bytes(b"")
        os.setxattr(probe, "user.datamesh", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)


def s3_client(access: str, secret: str, endpoint: str = f"{S3_HOST}:9000"):
    from minio import Minio

    return Minio(endpoint, access_key=access, secret_key=secret, secure=False)


HIVE_HOME_POD = "/opt/hive"          # HIVE_HOME of apache/hive:4.0.1 (bin/schematool, bin/hive)
HIVE_ENTRYPOINT_POD = "/entrypoint.sh"

# The parts of apache/hive:4.0.1 that the role's start-metastore.sh calls, for the standalone
# metastore of the testbed: $HIVE_HOME/bin/schematool and /entrypoint.sh (its metastore branch).
HIVE_SCHEMATOOL = """\
#!/bin/bash
# Written by tests/testbed/services.py: stands in for apache/hive:4.0.1's $HIVE_HOME/bin/schematool
# (bin/hive --service schemaTool): the same tool class of Hive 4.0.1, on the testbed's classpath.
exec "$JAVA_HOME/bin/java" $TESTBED_HIVE_JVM_OPTS $HADOOP_CLIENT_OPTS -cp "$TESTBED_HIVE_CLASSPATH" \\
  org.apache.hadoop.hive.metastore.tools.schematool.MetastoreSchemaTool "$@"
"""
HIVE_ENTRYPOINT = """\
#!/bin/bash
# Written by tests/testbed/services.py: stands in for apache/hive:4.0.1's /entrypoint.sh, which
# start-metastore.sh execs. As the image's: unless IS_RESUME=true, `schematool -initOrUpgradeSchema`
# (Hive 4; -initSchema before) and exit 1 if that fails; HADOOP_CLIENT_OPTS="$HADOOP_CLIENT_OPTS
# -Xmx1G $SERVICE_OPTS"; then the metastore on METASTORE_PORT (default 9083).
: ${DB_DRIVER:=derby}
SKIP_SCHEMA_INIT="${IS_RESUME:-false}"
export HADOOP_CLIENT_OPTS="$HADOOP_CLIENT_OPTS -Xmx1G $SERVICE_OPTS"
if [[ "${SKIP_SCHEMA_INIT}" == "false" ]]; then
  COMMAND="-initOrUpgradeSchema"
  if [ "$(echo "$HIVE_VER" | cut -d '.' -f1)" -lt "4" ]; then
    COMMAND="-${SCHEMA_COMMAND:-initSchema}"
  fi
  if "$HIVE_HOME/bin/schematool" -dbType "$DB_DRIVER" $COMMAND; then
    echo "Initialized schema successfully.."
  else
    echo "Schema initialization failed!"
    exit 1
  fi
fi
if [ "${SERVICE_NAME}" != "metastore" ]; then
  echo "the service testbed runs SERVICE_NAME=metastore only, not '${SERVICE_NAME}'" >&2
  exit 1
fi
export METASTORE_PORT=${METASTORE_PORT:-9083}
exec "$JAVA_HOME/bin/java" $TESTBED_HIVE_JVM_OPTS $HADOOP_CLIENT_OPTS -cp "$TESTBED_HIVE_CLASSPATH" \\
  org.apache.hadoop.hive.metastore.HiveMetaStore -p "$METASTORE_PORT"
"""


def hive_aux_jars(cfg: dict) -> Path:
    """Run the pod's init container fetch-jdbc-driver (files/hive/fetch-jdbc-driver.sh: download the
    PostgreSQL JDBC driver the role pins and check its SHA-256) natively, once per version and
    checksum; cached like every download. Returns the folder with the jar (the aux-jars volume)."""
    init = next((c for c in cfg.get("init_containers") or [] if c["name"] == "fetch-jdbc-driver"), None)
    if init is None:
        raise TestbedError("the hive-metastore pod has no init container fetch-jdbc-driver: where does its "
                           "PostgreSQL JDBC driver come from?")
    env = init["env"]
    final = component_dir("hive-aux-jars", f"{env.get('JDBC_VERSION')}-{str(env.get('JDBC_SHA256'))[:12]}")

    def build(tmp: Path) -> None:
        place_config(init, tmp)
        (tmp / "aux-jars").mkdir(exist_ok=True)
        paths = init["paths"]
        cmd = [translate_text(a, paths, tmp) for a in init.get("command", []) + init.get("args", [])]
        log(f"hive-metastore: init container {init['name']}: {' '.join(cmd)}")
        out = run(cmd, env=base_env(native_env(init, tmp)), cwd=tmp, capture=True, check=False, timeout=300)
        if out.returncode != 0:
            raise TestbedError(f"the hive-metastore init container {init['name']} failed (exit code "
                               f"{out.returncode}):\n{out.stdout[-3000:]}")
        for p in tmp.iterdir():
            if p.name != "aux-jars":
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    with cache_lock():
        return build_atomically(final, build) / "aux-jars"


def run_init_container(cfg: dict, name: str, base: Path) -> None:
    """Run one of the pod's init containers natively, with its files in `base` and its env, as the
    kubelet does before the metastore starts; its own error when it fails."""
    init = next((c for c in cfg.get("init_containers") or [] if c["name"] == name), None)
    if init is None:
        raise TestbedError(f"the hive-metastore pod has no init container {name}")
    paths = init["paths"]
    for pod, target in place_config(init, base).items():
        if pod.endswith(".sh"):
            target.write_text(translate_text(target.read_text(), paths, base))
    cmd = [translate_text(a, paths, base) for a in init.get("command", []) + init.get("args", [])]
    out = run(cmd, env=base_env(native_env(init, base)), cwd=base, capture=True, check=False, timeout=360)
    with open(base / f"init-{name}.log", "a") as fh:
        fh.write(f"==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n{out.stdout}")
    if out.returncode != 0:
        raise TestbedError(f"the hive-metastore init container {name} failed (exit code {out.returncode}):\n"
                           f"{out.stdout[-3000:]}")
    log(f"hive-metastore: init container {name}: {out.stdout.strip().splitlines()[-1] if out.stdout.strip() else 'ok'}")


def start_hive(procs: Procs, cfg: dict) -> float:
    """The pod's init containers prepare-schema (drops a half-made schema) and fetch-jdbc-driver
    (cached, as the pod's volume keeps the jar), then the metastore container's own command (the
    role's start-metastore.sh: `schematool -initOrUpgradeSchema`, then the image's entrypoint)."""
    t0 = time.monotonic()
    home = install_hive()
    java = hive_java()
    base = run_dir() / "hive"
    base.mkdir(parents=True, exist_ok=True)
    paths = cfg["paths"]
    run_init_container(cfg, "prepare-schema", base)
    files = place_config(cfg, base)
    for pod, target in files.items():  # scripts the testbed runs: their pod paths point into the run folder
        if pod.endswith(".sh"):
            target.write_text(translate_text(target.read_text(), paths, base))
    conf = native_path("/opt/hive/conf/hive-site.xml", paths, base).parent
    if not any(conf.glob("*log4j2.properties")):
        shutil.copy(home / "dist" / "conf" / "metastore-log4j2.properties", conf)
    aux = native_path("/opt/datamesh/aux-jars", paths, base)
    if aux.is_symlink() or aux.is_file():
        aux.unlink()
    elif aux.is_dir():
        shutil.rmtree(aux)
    aux.symlink_to(hive_aux_jars(cfg), target_is_directory=True)
    image = native_path(HIVE_HOME_POD, paths, base)
    (image / "bin").mkdir(parents=True, exist_ok=True)
    for target, text in ((image / "bin" / "schematool", HIVE_SCHEMATOOL),
                         (native_path(HIVE_ENTRYPOINT_POD, paths, base), HIVE_ENTRYPOINT)):
        target.write_text(text)
        target.chmod(0o755)
    scripts = image / "scripts"  # MetastoreSchemaTool reads its SQL from $METASTORE_HOME/scripts
    if scripts.is_symlink():  # re-pointed every start: a changed classpath is a new cache folder
        scripts.unlink()
    scripts.symlink_to(home / "dist" / "scripts", target_is_directory=True)
    (base / "tmp").mkdir(exist_ok=True)
    (base / "log").mkdir(exist_ok=True)
    env = base_env(native_env(cfg, base), java=java)
    if " " in str(base):
        raise TestbedError(f"the run folder {base} has a space in its path; the metastore's scripts split on spaces")
    env.update({
        "METASTORE_HOME": str(image),
        # as the image's bin/hive: conf, the aux jars (HIVE_AUX_JARS_PATH), Hive's and Hadoop's jars
        "TESTBED_HIVE_CLASSPATH": os.pathsep.join([
            str(conf), f"{env.get('HIVE_AUX_JARS_PATH', aux)}/*",
            str(home / "dist" / "lib" / "*"), str(home / "deps" / "*")]),
        "TESTBED_HIVE_JVM_OPTS": f"-Djava.io.tmpdir={base / 'tmp'} -Dmetastore.log.dir={base / 'log'}",
    })
    cmd = [translate_text(a, paths, base) for a in cfg.get("command", []) + cfg.get("args", [])]
    if not cmd:
        raise TestbedError("the metastore container has no command: the testbed runs the role's start script")
    out = base / "hive-metastore.out"
    p = procs.start("hive-metastore", cmd, env=env, cwd=base, log_file=out)
    svc = cfg["service"][0]
    host, port = svc["host"], svc["target_port"]
    wait_until(f"Hive Metastore {host}:{port}", lambda: port_open(_ip(host), port) and
               "default" in thrift_get_all_databases(host, port), 240, p, out, interval=0.5)
    return time.monotonic() - t0


TRINO_ETC_POD, TRINO_DATA_POD = "/etc/trino", "/data/trino"  # trinodb/trino's config and data folders
TRINO_CHECK_IP = "127.42.1.13"  # a second Trino for check_trino(), never in /etc/hosts


def start_trino(procs: Procs, cfg: dict, *, base: Path | None = None, name: str = "trino",
                ip: str | None = None, overrides: tuple[str, ...] = ()) -> tuple:
    """bin/launcher run with the pod's /etc/trino and env; the server binds the service address.
    Returns what wait_trino() takes: (process, start time, URL, log file, log offset)."""
    t0 = time.monotonic()
    home = install_trino() / "server"
    java = trino_java()
    base = base or run_dir() / "trino"
    base.mkdir(parents=True, exist_ok=True)
    paths = cfg["paths"]
    place_config(cfg, base)
    etc, data = native_path(TRINO_ETC_POD, paths, base), native_path(TRINO_DATA_POD, paths, base)
    data.mkdir(parents=True, exist_ok=True)
    svc = cfg["service"][0]
    ip = ip or _ip(svc["host"])
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


def wait_trino(p: subprocess.Popen, t0: float, url: str, log_file: Path, since: int = 0,
               timeout: float = 240) -> float:
    """Until /v1/info says "starting": false; if Trino exits first, its own error is in the message."""

    def ready() -> bool:
        status, body = http_get(f"{url}/v1/info")
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
        return _tail(log_file)
    return f"Trino's errors ({log_file}):\n" + "\n".join(picked[:20])


def check_trino(cfg: dict, base: Path, timeout: float = 240) -> float:
    """Start a second Trino with `cfg` in its own run folder `base` (on TRINO_CHECK_IP, discovering
    itself), wait until it is ready and stop it; returns its start time. When Trino refuses the
    config, raises TestbedError with Trino's own error."""
    procs = Procs()
    name = "trino-check"
    port = cfg["service"][0]["target_port"]
    started = start_trino(procs, cfg, base=base, name=name, ip=TRINO_CHECK_IP,
                          overrides=(f"discovery.uri=http://{TRINO_CHECK_IP}:{port}",))
    try:
        return wait_trino(*started, timeout=timeout)
    finally:
        stop_one(name)
        procs = Procs()
        procs.entries.pop(name, None)
        procs.save()


HUB_OVERRIDES = Template('''\
# Written by tests/testbed/services.py: the caller's jupyterhub_config.py, unchanged, then the
# testbed's few changes (a local spawner instead of KubeSpawner, the hub bound to its service
# address instead of 0.0.0.0, the pod's /srv/jupyterhub mapped to the run folder).
c = get_config()  # noqa: F821
load_subconfig($caller)  # noqa: F821

c.JupyterHub.hub_ip = $hub_ip
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = $homes + "/{username}"
c.Spawner.cmd = [$python, "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--allow-root"]
c.Spawner.environment = {$marker_var: $marker}
c.ConfigurableHTTPProxy.should_start = False

for _name in ("db_url", "cookie_secret_file", "pid_file"):
    _value = c.JupyterHub.get(_name)
    if isinstance(_value, str) and "/srv/jupyterhub" in _value:
        setattr(c.JupyterHub, _name, _value.replace("/srv/jupyterhub", $srv))
''')
HUB_CONFIG_POD = "/usr/local/etc/jupyterhub/jupyterhub_config.py"  # what the k8s-hub image runs


def start_jupyterhub(procs: Procs, cfg: dict) -> float:
    """The proxy with the proxy pod's command, then the hub with the role's jupyterhub_config.py
    and the hub container's env."""
    t0 = time.monotonic()
    home = install_jupyterhub()
    base = run_dir() / "jupyterhub"
    base.mkdir(parents=True, exist_ok=True)
    paths = cfg["paths"]
    place_config(cfg, base)
    caller = native_path(HUB_CONFIG_POD, paths, base)
    srv = native_path("/srv/jupyterhub", paths, base)
    homes = base / "home"
    for d in (srv, homes):
        d.mkdir(parents=True, exist_ok=True)
    hub_host = cfg["service"][0]["host"]
    python = str(home / "venv" / "bin" / "python")
    wrapper = base / "testbed_config.py"
    wrapper.write_text(HUB_OVERRIDES.substitute(
        caller=repr(str(caller)), hub_ip=repr(_ip(hub_host)), homes=repr(str(homes)), python=repr(python),
        marker_var=repr(MARKER_VAR), marker=repr(str(run_dir())), srv=repr(str(srv))))

    proxy = cfg["proxy"]
    public = next(s for s in proxy["service"] if s.get("node_port") or s["port"] == 80)
    api = next(s for s in proxy["service"] if s is not public)
    for host in (hub_host, public["host"], api["host"]):
        check_loopback(_ip(host))
    chp = home / "chp" / "node_modules" / "configurable-http-proxy" / "bin" / "configurable-http-proxy"
    cmd = list(proxy.get("command") or []) + list(proxy.get("args") or [])
    if not cmd or Path(cmd[0]).name != "configurable-http-proxy":
        raise TestbedError(f"the proxy container's command is {cmd[:1]}, not configurable-http-proxy")
    cmd = _flag(_flag(cmd[1:], "--ip", _ip(public["host"])), "--api-ip", _ip(api["host"]))
    proxy_env = base_env(native_env(proxy, base))
    token = proxy_env.get("CONFIGPROXY_AUTH_TOKEN", "")
    pp = procs.start("proxy", ["node", str(chp), *cmd], env=proxy_env, cwd=base, log_file=base / "proxy.log")
    wait_until("configurable-http-proxy API", lambda: http_get(
        f"http://{api['host']}:{api['target_port']}/api/routes", {"Authorization": f"token {token}"})[0] == 200,
        30, pp, base / "proxy.log")
    hub_env = base_env(native_env(cfg, base))
    ph = procs.start("hub", [python, "-m", "jupyterhub", "--config", str(wrapper)], env=hub_env, cwd=srv,
                     log_file=base / "hub.log")

    def hub_ready() -> bool:
        status, body = http_get(f"http://{public['host']}:{public['target_port']}/hub/api")
        return status == 200 and "version" in json.loads(body)

    wait_until("JupyterHub /hub/api through the proxy", hub_ready, 120, ph, base / "hub.log", interval=0.5)
    return time.monotonic() - t0


NGINX_MAIN = Template('''\
# Written by tests/testbed/services.py, in place of the image's /etc/nginx/nginx.conf.
user root;
worker_processes 1;
pid $base/nginx.pid;
error_log $base/logs/error.log notice;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $base/logs/access.log;
    client_body_temp_path $base/tmp/body;
    proxy_temp_path $base/tmp/proxy;
    fastcgi_temp_path $base/tmp/fastcgi;
    uwsgi_temp_path $base/tmp/uwsgi;
    scgi_temp_path $base/tmp/scgi;
    sendfile on;
    keepalive_timeout 65;
    include $conf_d/*.conf;
}
''')
NGINX_CONF_D_POD = "/etc/nginx/conf.d"


def nginx_server_conf(text: str, ip: str, paths: dict[str, str], base: Path) -> str:
    """The caller's server config with the pod-only parts mapped: listen lines narrowed to the
    service address (IPv6 listens dropped) and the pod's paths pointed at the run folder."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\s*)listen\s+(\S+)(.*);\s*(#.*)?$", line)
        if m:
            addr = m.group(2)
            if addr.startswith("["):
                out.append(f"{m.group(1)}# testbed: IPv6 listen dropped: {line.strip()}")
                continue
            port = addr.rsplit(":", 1)[-1]
            if port.isdigit():
                out.append(f"{m.group(1)}listen {ip}:{port}{m.group(3)};  # testbed: was {addr}")
                continue
        out.append(line)
    return translate_text("\n".join(out) + "\n", paths, base)


def start_nginx(procs: Procs, cfg: dict) -> float:
    t0 = time.monotonic()
    nginx = install_nginx()
    base = run_dir() / "nginx"
    base.mkdir(parents=True, exist_ok=True)
    paths = cfg["paths"]
    files = place_config(cfg, base)
    for sub in ("logs", "tmp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    svc = cfg["service"][0]
    ip = _ip(svc["host"])
    check_loopback(ip)
    conf_d = base / "testbed-conf.d"  # the server configs as nginx here reads them
    if conf_d.exists():
        shutil.rmtree(conf_d)
    conf_d.mkdir()
    for pod, target in files.items():
        if pod.startswith(NGINX_CONF_D_POD + "/") and pod.endswith(".conf"):
            (conf_d / target.name).write_text(nginx_server_conf(target.read_text(), ip, paths, base))
    (base / "nginx.conf").write_text(NGINX_MAIN.substitute(base=str(base), conf_d=str(conf_d)))
    run([str(nginx), "-t", "-q", "-p", str(base), "-c", str(base / "nginx.conf")], capture=True)
    p = procs.start("nginx", [str(nginx), "-p", str(base), "-c", str(base / "nginx.conf"), "-g", "daemon off;"],
                    env=base_env(), cwd=base, log_file=base / "logs" / "nginx.out")
    wait_until(f"nginx {svc['host']}:{svc['target_port']}",
               lambda: http_get(f"http://{svc['host']}:{svc['target_port']}/")[0] == 200, 20, p,
               base / "logs" / "error.log")
    return time.monotonic() - t0


def forward_pairs(config: dict) -> list[str]:
    """kube-proxy's part: each NodePort on 127.0.0.1, and each Service port that differs from the
    port the program listens on, forwarded to the program."""
    pairs = []
    for s in _services(config):
        ip = _ip(s["host"])
        if s.get("node_port"):
            pairs.append(f"127.0.0.1:{s['node_port']}={ip}:{s['target_port']}")
        if s["port"] != s["target_port"]:
            pairs.append(f"{ip}:{s['port']}={ip}:{s['target_port']}")
    return pairs


def start_forwarder(procs: Procs, config: dict) -> float:
    t0 = time.monotonic()
    pairs = forward_pairs(config)
    base = run_dir()
    p = procs.start("forward", [sys.executable, str(ASSETS / "forward.py"), *pairs], env=base_env(), cwd=base,
                    log_file=base / "forward.log")
    wait_until("NodePort forwarder", lambda: all(port_open(*_hp(pair.split("=")[0])) for pair in pairs), 10, p,
               base / "forward.log")
    return time.monotonic() - t0


def _hp(hostport: str) -> tuple[str, int]:
    h, _, port = hostport.rpartition(":")
    return h, int(port)


# ------------------------------------------------------------------ up / down / status


def up(config: dict | None = None, inventory: str | None = None) -> dict:
    """Start every service of `config` (default: the rendered one, default_config()) in dependency
    order; returns a summary (start times, RSS)."""
    if os.geteuid() != 0:
        raise TestbedError("the service testbed needs root (/etc/hosts, port 80, PostgreSQL's own user)")
    config = config or default_config(inventory)
    if Procs().entries and testbed_pids():
        log("services are already running: stopping them first")
        down()
    run_dir().mkdir(parents=True, exist_ok=True)
    pids_file().unlink(missing_ok=True)
    saved = run_dir() / "config.json"  # for restart() and the tests; holds passwords, so owner-only
    saved.touch(mode=0o600)
    os.chmod(saved, 0o600)
    saved.write_text(json.dumps(config, indent=2, default=str))
    install([n for n in COMPONENTS if n in config])
    log(f"config: {config.get('source', 'given')}")
    t_all = time.monotonic()
    write_hosts()
    procs = Procs()
    times: dict[str, float] = {}
    try:
        times["forward"] = start_forwarder(procs, config)
        if "postgres" in config:
            times.update(start_postgres(procs, config["postgres"]))
        if "s3" in config:
            times["s3"] = start_s3(procs, config["s3"])
        trino = start_trino(procs, config["trino"]) if "trino" in config else None  # JVM warms up meanwhile
        if "hive" in config:
            times["hive-metastore"] = start_hive(procs, config["hive"])
        if trino:
            times["trino"] = wait_trino(*trino)
        if "jupyterhub" in config:
            times["jupyterhub"] = start_jupyterhub(procs, config["jupyterhub"])
        if "nginx" in config:
            times["nginx"] = start_nginx(procs, config["nginx"])
    except BaseException:
        log("start failed: stopping what was started")
        down()
        raise
    total = time.monotonic() - t_all
    summary = {"source": config.get("source", "given"), "times": times, "total_s": total, "rss": {},
               "pids": {n: e["pid"] for n, e in procs.entries.items()}}
    for name in times:
        summary["rss"][name] = sum(_tree_rss(n) for n in (("proxy", "hub") if name == "jupyterhub" else (name,)))
    summary["rss_total"] = rss_bytes(testbed_pids())
    for name, t in times.items():
        log(f"{name:<26} ready in {t:6.1f}s   rss {summary['rss'].get(name, 0) / 2**20:7.0f} MiB")
    log(f"all services ready in {total:.1f}s; total RSS {summary['rss_total'] / 2**20:.0f} MiB "
        f"({len(testbed_pids())} processes); pids in {pids_file()}")
    (run_dir() / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def down(purge: bool = False) -> None:
    """Stop every process (SIGTERM, or SIGINT for PostgreSQL, then SIGKILL), remove the hosts block."""
    procs = Procs()
    order = list(procs.entries.items())[::-1]
    for name, e in order:
        pid = e["pid"]
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, e.get("stop_signal", signal.SIGTERM))
    # processes in sessions of their own (single-user servers the hub spawned) carry the marker
    leaders = {e["pid"] for e in procs.entries.values()}
    for pid in testbed_pids():
        if pid not in leaders and (_proc_stat(pid) or (0, 0))[1] not in leaders:
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
    remove_hosts()
    pids_file().unlink(missing_ok=True)
    if remaining:
        raise TestbedError(f"processes still alive after SIGKILL: {sorted(remaining)}")
    if purge and run_dir().exists():
        shutil.rmtree(run_dir())
        log(f"removed {run_dir()}")
    log("services stopped" + (" and data removed" if purge else "; data kept in " + str(run_dir())))


def _reap(pids) -> None:
    """Collect the exit status of processes this Python process started, so none stays a zombie."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def stop_one(name: str, timeout: float = 20) -> None:
    procs = Procs()
    e = procs.entries.get(name)
    if not e:
        raise TestbedError(f"no process named {name} in {pids_file()}")
    pid = e["pid"]
    group = {p for p in testbed_pids() if p == pid or (_proc_stat(p) or (0, 0))[1] == pid}
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


def restart(name: str) -> float:
    """Stop one service and start it again with the config of the last up(); returns its start time.
    Only the Hive Metastore for now: its restart must find the existing schema (IS_RESUME)."""
    if name not in ("hive", "hive-metastore"):
        raise TestbedError(f"restart supports hive-metastore, not {name}")
    config = saved_config()
    stop_one("hive-metastore")
    return start_hive(Procs(), config["hive"])


def _addresses() -> dict[str, tuple[str, int]]:
    """process name -> the address it answers on, from the saved config."""
    with contextlib.suppress(TestbedError, ValueError):
        config = saved_config()
        out = {name: (inst["fqdn"], 5432) for name, inst in config.get("postgres", {}).get("instances", {}).items()}
        for proc, section in (("s3", "s3"), ("hive-metastore", "hive"), ("trino", "trino"), ("hub", "jupyterhub"),
                              ("nginx", "nginx")):
            if section in config and config[section].get("service"):
                s = config[section]["service"][0]
                out[proc] = (s["host"], s["target_port"])
        for s in config.get("jupyterhub", {}).get("proxy", {}).get("service", []):
            if s.get("node_port"):
                out["proxy"] = (s["host"], s["target_port"])
        return out
    return {}


def status() -> dict:
    procs = Procs()
    result = {}
    for name, e in procs.entries.items():
        result[name] = {"pid": e["pid"], "alive": pid_alive(e["pid"]), "log": e["log"]}
    for name, (host, port) in _addresses().items():
        if name in result:
            try:
                result[name]["port_open"] = port_open(host, port)
            except OSError:
                result[name]["port_open"] = False
            result[name]["address"] = f"{host}:{port}"
    return result


def print_status() -> int:
    st = status()
    if not st:
        print("service testbed: not running")
        return 3
    ok = True
    for name, s in st.items():
        state = "up" if s["alive"] and s.get("port_open", True) else "DOWN"
        ok &= state == "up"
        print(f"{name:<26} {state:<5} pid {s['pid']:<8} {s.get('address', '')}")
    print(f"total RSS {rss_bytes(testbed_pids()) / 2**20:.0f} MiB")
    return 0 if ok else 1


def trino_query(sql: str, user: str = "admin", server: str | None = None, timeout: float = 120) -> list[list]:
    """Run one statement through Trino's HTTP API (POST /v1/statement) and return all rows."""
    server = server or f"http://{TRINO_HOST}:8080"
    req = urllib.request.Request(f"{server}/v1/statement", data=sql.encode(), method="POST",
                                 headers={"X-Trino-User": user, "Content-Type": "text/plain"})
    rows: list[list] = []
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(req, timeout=30) as r:
        doc = json.loads(r.read())
    while True:
        if "error" in doc:
            raise TestbedError(f"Trino: {doc['error'].get('message')}")
        rows.extend(doc.get("data") or [])
        nxt = doc.get("nextUri")
        if not nxt:
            return rows
        if time.monotonic() > deadline:
            raise TestbedError(f"Trino query did not finish in {timeout}s: {sql}")
        with urllib.request.urlopen(urllib.request.Request(nxt, headers={"X-Trino-User": user}), timeout=30) as r:
            doc = json.loads(r.read())


def hub_login(user: str, password: str, base: str = "http://127.0.0.1:30080") -> http.cookiejar.CookieJar:
    """Log in through the proxy as a browser does (GET the form for its _xsrf, POST it)."""
    jar = http.cookiejar.CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    with opener.open(f"{base}/hub/login", timeout=10) as r:
        page = r.read().decode()
    m = re.search(r'name="_xsrf"\s+value="([^"]+)"', page)
    form = {"username": user, "password": password}
    if m:
        form["_xsrf"] = m.group(1)
    data = urllib.parse.urlencode(form).encode()
    try:
        opener.open(urllib.request.Request(f"{base}/hub/login?next=", data=data), timeout=30)
    except urllib.error.HTTPError as e:
        if e.code != 302:
            raise TestbedError(f"JupyterHub login as {user} answered HTTP {e.code}") from e
    if not any(c.name.startswith("jupyterhub-session-id") or c.name == "jupyterhub-hub-login" for c in jar):
        raise TestbedError(f"JupyterHub login as {user} set no session cookie")
    return jar


# ------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed.services", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="download/build what is missing")
    p_install.add_argument("--only", help=f"comma-separated subset of {','.join(COMPONENTS)}")
    p_up = sub.add_parser("up", help="start every service with the config the roles render (unless --config)")
    p_up.add_argument("--inventory", help="inventory to render (default docker-desktop)")
    p_up.add_argument("--config", help="JSON or YAML file with the config dict up() takes, instead of the render")
    p_down = sub.add_parser("down", help="stop every service and remove the /etc/hosts block")
    p_down.add_argument("--purge", action="store_true", help="also delete the run folder (data, logs)")
    sub.add_parser("status", help="what runs, where")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            t0 = time.monotonic()
            paths = install(args.only)
            for name, p in paths.items():
                print(f"{name}\t{p}")
            log(f"install done in {time.monotonic() - t0:.1f}s")
            return 0
        if args.command == "up":
            config = None
            if args.config:
                text = Path(args.config).read_text()
                if args.config.endswith((".yml", ".yaml")):
                    import yaml

                    config = yaml.safe_load(text)
                else:
                    config = json.loads(text)
            up(config, inventory=args.inventory)
            return 0
        if args.command == "down":
            down(purge=args.purge)
            return 0
        if args.command == "status":
            return print_status()
    except TestbedError as e:
        print(f"service testbed: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the render's own errors (RenderError, DatameshError): one clear line
        if type(e).__name__ not in ("RenderError", "DatameshError"):
            raise
        print(f"service testbed: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
