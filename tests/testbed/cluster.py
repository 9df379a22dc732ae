"""Cluster testbed: a real Kubernetes control plane without containers.

kube-apiserver, kube-controller-manager, kube-scheduler and kubectl are built
from the Go module proxy at one Kubernetes release, etcd at the version that
release pins (its build/dependencies.yaml), and KWOK (kwok, kwokctl) fakes one
node, sized like Docker Desktop's VM (4 CPU, 8Gi), and the life of the pods on
it: Deployment and StatefulSet pods become Ready, Job pods complete.
kwokctl's "binary" runtime runs the components as plain processes on loopback.

    python -m tests.testbed.cluster build   # build what is missing (cold: minutes; warm: nothing)
    python -m tests.testbed.cluster up      # build, start, write .testbed/env; prints timings
    python -m tests.testbed.cluster env     # print the exports for the running cluster
    python -m tests.testbed.cluster down    # stop; no process is left
    python -m tests.testbed.cluster size    # size of the cache

From Python: build(), up(), down(), is_up(), node_ready(), kubeconfig_path(),
kubectl_path(), audit_log_path(), audit_events(), restart_apiserver().

Everything built is cached by version under $DATAMESH_CACHE/testbed
(default ~/.cache/datamesh/testbed), next to the Go caches used to build it:

    kubernetes-v1.37.2/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
    kubernetes-v1.37.2/src/go.mod    the wrapper module it was built from
    etcd-v3.7.0/bin/etcd
    kwok-v0.8.0/bin/{kwok,kwokctl}
    go/{mod,build,path}              GOMODCACHE, GOCACHE, GOPATH
    kwok/clusters/datamesh/          the running cluster: kubeconfig.yaml, logs/, pids/

Each component is built in a temporary directory and renamed into place, so a
killed build never leaves a half-filled cache entry.

Audit log: the apiserver logs every write (create, update, patch, delete,
deletecollection; leases and events left out) as JSON lines at Metadata level
to audit_log_path(). All clients share one user (kwok-admin), so tell writers
apart by userAgent (kubectl/..., kube-controller-manager/..., datamesh/...).

PersistentVolumeClaims: there is no storage driver, so `up` creates a default
StorageClass "standard" (provisioner datamesh.local/testbed) and starts a small
provisioner loop (`cluster.py provision`, its own process) that creates one
hostPath PV, pre-bound by claimRef, for each pending PVC of that class; the
PV controller in kube-controller-manager binds them as usual. A released PV
of that class is deleted (reclaimPolicy Delete), like a real provisioner does.

Settings: DATAMESH_TESTBED_KUBERNETES (release, default below),
DATAMESH_TESTBED_KWOK, DATAMESH_TESTBED_CLUSTER (cluster name, default
datamesh; its env file is then .testbed/env-NAME), DATAMESH_CACHE.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from string import Template

import yaml

from tests.testbed import cache_root, component_dir

# The newest release Go 1.26 builds; v1.36.3 and v1.34.4 work too (KWOK v0.8.0 lists 1.36 as its newest tested).
K8S_VERSION = os.environ.get("DATAMESH_TESTBED_KUBERNETES", "v1.37.2")
KWOK_VERSION = os.environ.get("DATAMESH_TESTBED_KWOK", "v0.8.0")
CLUSTER = os.environ.get("DATAMESH_TESTBED_CLUSTER", "datamesh")
NODE = "datamesh-node"
STORAGE_CLASS = "standard"
PROVISIONER = "datamesh.local/testbed"

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def log(msg: str) -> None:
    print(f"[testbed] {msg}", file=sys.stderr, flush=True)


class TestbedError(RuntimeError):
    """A testbed step failed; the message says which and what to do."""

    __test__ = False  # not a pytest test class


# ---------------------------------------------------------------- paths


def kwok_workdir() -> Path:
    """KWOK_WORKDIR: kwokctl's home (config, clusters/) instead of ~/.kwok."""
    return cache_root() / "kwok"


def cluster_dir() -> Path:
    """kwokctl's working directory for the cluster (kubeconfig, logs, pids)."""
    return kwok_workdir() / "clusters" / CLUSTER


def kubeconfig_path() -> Path:
    return cluster_dir() / "kubeconfig.yaml"


def audit_log_path() -> Path:
    """JSON lines, one audit event per write the apiserver accepted."""
    return cluster_dir() / "logs" / "audit.log"


def audit_events(user_agent: str | None = None) -> list[dict]:
    """Audit events written so far, optionally only those whose user agent starts with `user_agent`."""
    events = []
    with open(audit_log_path()) as fh:
        for line in fh:
            event = json.loads(line)
            if user_agent is None or event.get("userAgent", "").startswith(user_agent):
                events.append(event)
    return events


def env_file() -> Path:
    """.testbed/env in the work tree (.testbed/env-NAME for a cluster not named datamesh)."""
    return REPO / ".testbed" / ("env" if CLUSTER == "datamesh" else f"env-{CLUSTER}")


def kubectl_path() -> Path:
    return component_dir("kubernetes", K8S_VERSION) / "bin" / "kubectl"


# ---------------------------------------------------------------- go


def go_env() -> dict[str, str]:
    """Environment for every go command: caches under cache_root(), no cgo, no toolchain download."""
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


def go(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, capture: bool = False) -> str:
    cmd = [shutil.which("go") or "go", *args]
    proc = subprocess.run(
        cmd, cwd=cwd, env=env or go_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else None, text=True,
    )
    if proc.returncode != 0:
        raise TestbedError(f"`go {' '.join(args)}` failed (exit {proc.returncode}); see the output above")
    return proc.stdout or ""


def module_info(path: str, version: str) -> dict:
    """`go mod download -json` for one module: GoMod, Dir, Info paths."""
    cwd = cache_root() / "go"
    cwd.mkdir(parents=True, exist_ok=True)
    return json.loads(go("mod", "download", "-json", f"{path}@{version}", cwd=cwd, capture=True))


def parse_replaces(gomod: str) -> list[tuple[str, str]]:
    """(module, local path) for every `replace X => ./path` or `../path` in a go.mod."""
    pattern = r"^\s*(?:replace\s+)?(\S+)\s+=>\s+(\.\.?/\S+)\s*$"
    return re.findall(pattern, gomod, re.M)


def parse_requires(gomod: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s*//.*)?$", gomod, re.M))


def go_directive(gomod: str) -> str:
    return re.search(r"^go\s+(\S+)", gomod, re.M).group(1)


def render_gomod(name: str, **values: str) -> str:
    return Template((HERE / "gomod" / name / "go.mod.tmpl").read_text()).substitute(values)


# ---------------------------------------------------------------- cache


@contextmanager
def cache_lock():
    """One builder at a time; also lets us delete temp dirs of killed builds safely."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def cached(name: str, version: str, binaries: tuple[str, ...]) -> Path | None:
    bin_dir = component_dir(name, version) / "bin"
    if all((bin_dir / b).is_file() for b in binaries):
        return bin_dir
    return None


def build_into_cache(name: str, version: str, binaries: tuple[str, ...], build_fn) -> Path:
    """Run build_fn(tmp_dir) and atomically rename tmp_dir to the cache entry."""
    final = component_dir(name, version)
    for stale in cache_root().glob(f".{final.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=cache_root()))
    try:
        build_fn(tmp)
        missing = [b for b in binaries if not (tmp / "bin" / b).is_file()]
        if missing:
            raise TestbedError(f"building {name} {version} produced no {', '.join(missing)}")
        if final.exists():  # an incomplete entry from an older layout
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "bin"


def ensure(name: str, version: str, binaries: tuple[str, ...], build_fn, timings: dict) -> Path:
    bin_dir = cached(name, version, binaries)
    if bin_dir:
        return bin_dir
    with cache_lock():
        bin_dir = cached(name, version, binaries)
        if bin_dir:
            return bin_dir
        if not shutil.which("go"):
            raise TestbedError(f"{name} {version} is not in the cache and Go is not on PATH: install Go 1.26+")
        log(f"building {name} {version} (cold; this takes a while on 2 cores)")
        start = time.monotonic()
        bin_dir = build_into_cache(name, version, binaries, build_fn)
        timings[f"build {name} {version}"] = time.monotonic() - start
        log(f"built {name} {version} in {timings[f'build {name} {version}']:.0f}s")
        return bin_dir


# ---------------------------------------------------------------- builds


def staging_version(version: str) -> str:
    """k8s.io/kubernetes v1.34.4 publishes its staging modules as v0.34.4."""
    if not version.startswith("v1."):
        raise TestbedError(f"unexpected Kubernetes version {version}, want v1.X.Y")
    return "v0." + version[len("v1."):]


def etcd_version(k8s_version: str = K8S_VERSION) -> str:
    """The etcd release this Kubernetes release is built and tested with.

    Read from the release's build/dependencies.yaml, and remembered in the
    kubernetes cache entry so a warm start needs no Go toolchain.
    """
    remembered = component_dir("kubernetes", k8s_version) / "etcd.version"
    if remembered.is_file():
        return remembered.read_text().strip()
    info = module_info("k8s.io/kubernetes", k8s_version)
    deps = yaml.safe_load((Path(info["Dir"]) / "build" / "dependencies.yaml").read_text())
    for dep in deps["dependencies"]:
        if dep["name"] == "etcd":
            return "v" + str(dep["version"]).lstrip("v")
    raise TestbedError(f"k8s.io/kubernetes {k8s_version} names no etcd in build/dependencies.yaml")


def kubernetes_gomod(version: str) -> str:
    info = module_info("k8s.io/kubernetes", version)
    upstream = Path(info["GoMod"]).read_text()
    staged = staging_version(version)
    replaces = [
        f"\t{mod} => {mod} {staged}"
        for mod, path in parse_replaces(upstream)
        if path.startswith("./staging/src/")
    ]
    if not replaces:
        raise TestbedError(f"k8s.io/kubernetes {version} go.mod has no staging replaces; layout changed?")
    godebug = "".join(f"\n{line}\n" for line in re.findall(r"^godebug\s.*$", upstream, re.M))
    return render_gomod(
        "kubernetes", go=go_directive(upstream), godebug=godebug, version=version,
        replaces="\n".join(replaces),
    )


def kubernetes_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    info = json.loads(Path(module_info("k8s.io/kubernetes", version)["Info"]).read_text())
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": "",  # unknown from the module proxy; user agents then say kubernetes/unknown
        "gitTreeState": "clean",
        "buildDate": info["Time"][:19] + "Z",  # release time: reproducible
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{key}={value}" for key, value in values.items()]
    return " ".join(flags)


def build_kubernetes(version: str = K8S_VERSION, timings: dict | None = None) -> Path:
    def build(tmp: Path) -> None:
        src = tmp / "src"
        src.mkdir()
        (src / "go.mod").write_text(kubernetes_gomod(version))
        packages = [f"k8s.io/kubernetes/cmd/{c}" for c in K8S_COMMANDS]
        go("build", "-mod=mod", "-o", str(tmp / "bin") + "/", "-ldflags", kubernetes_ldflags(version),
           *packages, cwd=src)
        (tmp / "etcd.version").write_text(etcd_version(version) + "\n")

    return ensure("kubernetes", version, K8S_COMMANDS, build, timings if timings is not None else {})


def etcd_gomod(version: str) -> str:
    info = module_info("go.etcd.io/etcd/server/v3", version)
    upstream = Path(info["GoMod"]).read_text()
    requires = parse_requires(upstream)
    # Mirror the in-repo replaces (../api, ../pkg, ...) with the published modules;
    # the ./FORBIDDEN_DEPENDENCY guards point at nothing and are left out.
    replaces = [
        f"\t{mod} => {mod} {requires.get(mod, version)}"
        for mod, path in parse_replaces(upstream)
        if path.startswith("../")
    ]
    return render_gomod("etcd", go=go_directive(upstream), version=version, replaces="\n".join(replaces))


def build_etcd(version: str | None = None, timings: dict | None = None) -> Path:
    version = version or etcd_version()

    def build(tmp: Path) -> None:
        src = tmp / "src"
        src.mkdir()
        (src / "go.mod").write_text(etcd_gomod(version))
        go("build", "-mod=mod", "-o", str(tmp / "bin" / "etcd"), "-ldflags", "-s -w",
           "go.etcd.io/etcd/server/v3", cwd=src)

    return ensure("etcd", version, ("etcd",), build, timings if timings is not None else {})


def build_kwok(version: str = KWOK_VERSION, timings: dict | None = None) -> Path:
    def build(tmp: Path) -> None:
        env = go_env()
        env["GOBIN"] = str(tmp / "bin")
        go("install", "-ldflags", "-s -w",
           f"sigs.k8s.io/kwok/cmd/kwok@{version}", f"sigs.k8s.io/kwok/cmd/kwokctl@{version}",
           cwd=cache_root() / "go", env=env)

    return ensure("kwok", version, ("kwok", "kwokctl"), build, timings if timings is not None else {})


def build(timings: dict | None = None) -> dict[str, Path]:
    """Build (or find cached) every binary the testbed needs; returns their bin dirs."""
    timings = timings if timings is not None else {}
    return {
        "kubernetes": build_kubernetes(timings=timings),
        "etcd": build_etcd(timings=timings),
        "kwok": build_kwok(timings=timings),
    }


# ---------------------------------------------------------------- cluster

# Writes only, at Metadata level (who, user agent, verb, object, response code).
# Leases and Events are left out: the control plane renews leases every few
# seconds and the tool under test never writes either.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]},
        {"level": "None", "resources": [{"group": "", "resources": ["events"]},
                                        {"group": "events.k8s.io", "resources": ["events"]}]},
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}


def node_manifest() -> dict:
    """One fake node sized like Docker Desktop's default VM."""
    resources = {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "60Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": NODE,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/control-plane": "",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }


def storage_class_manifest() -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def kwokctl_config(bins: dict[str, Path]) -> dict:
    """kwokctl options that have no command-line flag (kubectl) plus the version kwokctl assumes."""
    return {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": {
            "runtime": "binary",
            "kubeVersion": K8S_VERSION,
            "kubectlBinary": str(bins["kubernetes"] / "kubectl"),
            "bindAddress": "127.0.0.1",  # every component listens on loopback only
            "quietPull": True,
        },
    }


def kwokctl_env() -> dict[str, str]:
    """KWOK_WORKDIR keeps kwokctl's state out of ~/.kwok; our kubectl goes first on PATH
    because kwokctl prefers any kubectl on PATH for its readiness checks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWOK_")}
    env["KWOK_WORKDIR"] = str(kwok_workdir())
    kube_bin = component_dir("kubernetes", K8S_VERSION) / "bin"
    env["PATH"] = os.pathsep.join([str(kube_bin), env.get("PATH", "")])
    return env


def kwokctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    config = kwok_workdir() / f"{CLUSTER}.kwokctl.yaml"
    binary = component_dir("kwok", KWOK_VERSION) / "bin" / "kwokctl"
    cmd = [str(binary), *(["--config", str(config)] if config.exists() else []), "--name", CLUSTER, *args]
    proc = subprocess.run(cmd, env=kwokctl_env(), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(kwok_workdir() / f"{CLUSTER}.kwokctl.log", "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n")
    if check and proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise TestbedError(f"`kwokctl {' '.join(args[:2])}` failed (exit {proc.returncode}):\n{tail}")
    return proc


def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """kubectl of the built release against the testbed."""
    proc = subprocess.run([str(kubectl_path()), "--kubeconfig", str(kubeconfig_path()), *args],
                          input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise TestbedError(f"`kubectl {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def component_pids() -> dict[str, int | None]:
    """Component name -> pid from kwokctl's pid files; None where that process has ended.

    A pid counts only while its command line runs from this cluster's directory,
    so a stale pid file (say, after a reboot) never makes us signal someone else.
    """
    pids = {}
    for pid_file in (cluster_dir() / "pids").glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = None
        pids[pid_file.stem] = pid if pid and alive(pid) and runs_from(pid, cluster_dir()) else None
    return pids


def runs_from(pid: int, marker: Path | str) -> bool:
    """True if the command line of `pid` mentions `marker`."""
    try:
        return str(marker) in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(what: str, predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def is_up() -> bool:
    """True when the apiserver of the testbed answers /readyz."""
    if not kubeconfig_path().exists():
        return False
    return kubectl("get", "--raw", "/readyz", "--request-timeout=2s", check=False).returncode == 0


def server_version() -> str:
    return json.loads(kubectl("get", "--raw", "/version").stdout)["gitVersion"]


def node_ready() -> bool:
    proc = kubectl("get", "node", NODE, "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    conditions = json.loads(proc.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@contextmanager
def timed(timings: dict, what: str):
    start = time.monotonic()
    yield
    timings[what] = time.monotonic() - start


def up(timings: dict | None = None) -> Path:
    """Build what is missing, start the cluster, wait until its node is Ready; returns the kubeconfig."""
    timings = timings if timings is not None else {}
    bins = build(timings)
    if is_up() and node_ready() and server_version() == K8S_VERSION:
        if stopped_components():
            restart_stopped()
        if not provisioner_running():
            start_provisioner()
        log(f"cluster {CLUSTER} is already up")
        write_env_file()
        return kubeconfig_path()
    with timed(timings, "clean up a stale cluster"):
        down()

    kwok_workdir().mkdir(parents=True, exist_ok=True)
    (kwok_workdir() / f"{CLUSTER}.kwokctl.yaml").write_text(yaml.safe_dump(kwokctl_config(bins)))
    policy = kwok_workdir() / f"{CLUSTER}.audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    k8s = bins["kubernetes"]
    with timed(timings, "kwokctl create cluster"):
        kwokctl(
            "create", "cluster",
            "--runtime", "binary",
            "--kubeconfig=",  # leave ~/.kube/config alone
            "--kube-apiserver-binary", str(k8s / "kube-apiserver"),
            "--kube-controller-manager-binary", str(k8s / "kube-controller-manager"),
            "--kube-scheduler-binary", str(k8s / "kube-scheduler"),
            "--etcd-binary", str(bins["etcd"] / "etcd"),
            "--kwok-controller-binary", str(bins["kwok"] / "kwok"),
            "--kube-audit-policy", str(policy),
            "--wait", "60s",
        )
    with timed(timings, "apiserver ready"):
        wait_until("the apiserver to answer /readyz", is_up, 60)
    with timed(timings, "node and storage class"):
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "List", "items": [node_manifest(), storage_class_manifest()],
        }))
        start_provisioner()
        wait_until(f"node {NODE} to become Ready", node_ready, 60)
    log(f"cluster {CLUSTER} is up; KUBECONFIG={kubeconfig_path()}")
    write_env_file()
    return kubeconfig_path()


def down() -> None:
    """Stop the cluster and the provisioner; no process of the testbed is left running."""
    stop_provisioner()
    pids = component_pids()
    for name, pid in pids.items():
        if pid is None:  # ended or not ours: kwokctl must not signal it
            (cluster_dir() / "pids" / f"{name}.pid").unlink(missing_ok=True)
    if cached("kwok", KWOK_VERSION, ("kwokctl",)) and cluster_dir().exists():
        # --kubeconfig names the file to remove the context from: the cluster's own,
        # so ~/.kube/config is never touched (an empty value is an error here).
        kwokctl("delete", "cluster", f"--kubeconfig={kubeconfig_path()}", check=False)
    for pid in pids.values():
        if pid and runs_from(pid, cluster_dir()):
            stop_process(pid)
    shutil.rmtree(cluster_dir(), ignore_errors=True)
    env_file().unlink(missing_ok=True)


def restart_apiserver(timeout: float = 60) -> None:
    """Kill kube-apiserver and start it again while the rest keeps running (a fault to ride out).

    SIGKILL, as in a crash: on SIGTERM the apiserver drains requests for 60 s,
    long enough for the controller manager and scheduler to lose their leases and exit.
    """
    pid = component_pids().get("kube-apiserver")
    if pid:
        stop_process(pid, grace=0)
    restart_stopped()
    wait_until("the apiserver to answer /readyz again", is_up, timeout)


def stopped_components() -> list[str]:
    """Components whose recorded process has ended."""
    return [name for name, pid in component_pids().items() if pid is None]


def restart_stopped() -> None:
    """Start every component of the cluster whose process has ended.

    kwokctl counts a component as running while its pid answers signal 0, which
    a zombie does; so the pid files of ended processes are removed first.
    """
    for name in stopped_components():
        (cluster_dir() / "pids" / f"{name}.pid").unlink()
    kwokctl("start", "cluster")


def stop_process(pid: int, grace: float = 15) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds (at once if 0); returns once the process has ended."""
    steps = [(signal.SIGTERM, grace)] if grace else []
    for sig, wait in steps + [(signal.SIGKILL, 10)]:
        try:
            os.kill(pid, sig)
            wait_until(f"process {pid} to exit", lambda: not alive(pid), wait)
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


def write_env_file() -> Path:
    env_file().parent.mkdir(parents=True, exist_ok=True)
    env_file().write_text(
        f"export KUBECONFIG={kubeconfig_path()}\n"
        "export DATAMESH_INVENTORY=testbed\n"
    )
    return env_file()


# ---------------------------------------------------------------- PVC provisioner


def provisioner_pid_file() -> Path:
    return kwok_workdir() / f"{CLUSTER}.provisioner.pid"


def start_provisioner() -> None:
    stop_provisioner()
    logfile = open(cluster_dir() / "logs" / "provisioner.log", "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.testbed.cluster", "provision"],
        stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
        start_new_session=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path]), "DATAMESH_TESTBED_CLUSTER": CLUSTER,
             "DATAMESH_CACHE": str(cache_root().parent)},
    )
    logfile.close()
    provisioner_pid_file().write_text(str(proc.pid))


def provisioner_pid() -> int | None:
    """The provisioner's pid while it runs (checked by command line, not just by number)."""
    try:
        pid = int(provisioner_pid_file().read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) and runs_from(pid, "tests.testbed.cluster provision") else None


def provisioner_running() -> bool:
    return provisioner_pid() is not None


def stop_provisioner() -> None:
    pid = provisioner_pid()
    if pid:
        stop_process(pid)
    provisioner_pid_file().unlink(missing_ok=True)


class Api:
    """A minimal Kubernetes API client (stdlib only) from the testbed kubeconfig."""

    USER_AGENT = "datamesh-testbed-provisioner"

    def __init__(self, kubeconfig: Path):
        cfg = yaml.safe_load(kubeconfig.read_text())
        context = _named(cfg["contexts"], cfg["current-context"])["context"]
        cluster = _named(cfg["clusters"], context["cluster"])["cluster"]
        user = _named(cfg["users"], context["user"])["user"]
        url = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port, self.scheme = url.hostname, url.port, url.scheme
        self.ssl = None
        if self.scheme == "https":
            self.ssl = ssl.create_default_context(cafile=_file(cluster, "certificate-authority"))
            if "client-certificate" in user or "client-certificate-data" in user:
                self.ssl.load_cert_chain(_file(user, "client-certificate"), _file(user, "client-key"))

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.ssl, timeout=10)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers={
                "Accept": "application/json", "Content-Type": "application/json",
                "User-Agent": self.USER_AGENT,
            })
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data) if data else {}
        finally:
            conn.close()

    def items(self, path: str) -> list[dict]:
        status, body = self.call("GET", path)
        if status != 200:
            raise TestbedError(f"GET {path}: HTTP {status} {body.get('message', '')}")
        return body["items"]


def _named(entries: list[dict], name: str) -> dict:
    return next(e for e in entries if e["name"] == name)


def _file(section: dict, key: str) -> str:
    """A kubeconfig credential as a file path (inline *-data is written to a private temp file)."""
    if key in section:
        return section[key]
    fd, path = tempfile.mkstemp(prefix="testbed-cred-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64decode(section[f"{key}-data"]))
    return path


def provision_once(api: Api) -> list[str]:
    """Create a hostPath PV for each pending PVC of our StorageClass; delete released PVs of ours."""
    actions = []
    classes = {
        sc["metadata"]["name"]: sc
        for sc in api.items("/apis/storage.k8s.io/v1/storageclasses")
        if sc.get("provisioner") == PROVISIONER
    }
    pvs = api.items("/api/v1/persistentvolumes")
    existing = {pv["metadata"]["name"] for pv in pvs}
    for pvc in api.items("/api/v1/persistentvolumeclaims"):
        meta, spec = pvc["metadata"], pvc["spec"]
        sc = classes.get(spec.get("storageClassName") or "")
        name = f"pvc-{meta['uid']}"
        if not sc or spec.get("volumeName") or pvc.get("status", {}).get("phase") != "Pending" or name in existing:
            continue
        selected = meta.get("annotations", {}).get("volume.kubernetes.io/selected-node")
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not selected:
            continue
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "volumeMode": spec.get("volumeMode") or "Filesystem",
                "storageClassName": sc["metadata"]["name"],
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "claimRef": {
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
                },
                "hostPath": {"path": f"/var/lib/datamesh-testbed/{name}", "type": ""},
            },
        }
        status, body = api.call("POST", "/api/v1/persistentvolumes", pv)
        if status not in (201, 409):
            raise TestbedError(f"creating PV {name}: HTTP {status} {body.get('message', '')}")
        actions.append(f"created {name} for {meta['namespace']}/{meta['name']}")
    for pv in pvs:
        ours = pv["metadata"].get("annotations", {}).get("pv.kubernetes.io/provisioned-by") == PROVISIONER
        released = pv.get("status", {}).get("phase") in ("Released", "Failed")
        if ours and released and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            api.call("DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
            actions.append(f"deleted {pv['metadata']['name']}")
    return actions


def provision_forever(interval: float = 0.5) -> None:
    """The provisioner loop run by `up`; ends on SIGTERM or when the cluster is deleted."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    api = Api(kubeconfig_path())
    while kubeconfig_path().exists():
        try:
            for action in provision_once(api):
                log(action)
        except (OSError, http.client.HTTPException, ValueError, KeyError, TestbedError) as exc:
            log(f"provisioner: {exc}")
        time.sleep(interval)


# ---------------------------------------------------------------- CLI


def cache_size() -> dict[str, int]:
    """Bytes on disk per top-level cache entry."""
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


def print_timings(timings: dict) -> None:
    for what, seconds in timings.items():
        print(f"{what:40s} {seconds:8.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed.cluster", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{build,up,down,env,size}")
    sub.add_parser("build", help="build or find every binary in the cache")
    sub.add_parser("up", help="build what is missing, start the cluster, write .testbed/env")
    sub.add_parser("down", help="stop the cluster; no process is left")
    sub.add_parser("env", help="print the shell exports for the running cluster")
    sub.add_parser("size", help="print the size of the cache")
    sub.add_parser("provision")  # the PVC provisioner loop that `up` starts; not for people
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    try:
        if args.command == "build":
            start = time.monotonic()
            for name, path in build(timings).items():
                print(f"{name:12s} {path}")
            timings["build (total)"] = time.monotonic() - start
            print_timings(timings)
        elif args.command == "up":
            start = time.monotonic()
            up(timings)
            timings["up (total)"] = time.monotonic() - start
            print_timings(timings)
            print(f"source {env_file()}")
        elif args.command == "down":
            down()
        elif args.command == "env":
            if not is_up():
                raise TestbedError("the cluster testbed is not running: run `python -m tests.testbed.cluster up`")
            print(write_env_file().read_text(), end="")
        elif args.command == "size":
            for name, size in cache_size().items():
                print(f"{name:40s} {size / 2**20:10.1f} MiB")
        elif args.command == "provision":
            provision_forever()
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
