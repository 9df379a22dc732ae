"""Cluster testbed: a real Kubernetes control plane without containers.

kube-apiserver, kube-controller-manager, kube-scheduler and kubectl are built
from the Go module proxy at one Kubernetes release, etcd at the version that
release pins (its build/dependencies.yaml), and KWOK (kwok, kwokctl) fakes one
node, sized like Docker Desktop's VM (4 CPU, 8Gi), and the life of the pods on
it: Deployment and StatefulSet pods become Ready, Job pods complete.
kwokctl's "binary" runtime runs the components as plain processes on loopback.

    python -m testbed.cluster build   # build what is missing, cyclonus too (cold: minutes; warm: nothing)
    python -m testbed.cluster up      # build, start, write .testbed/env; prints timings
    python -m testbed.cluster env     # print the exports for the running cluster
    python -m testbed.cluster down    # stop; no process is left
    python -m testbed.cluster size    # size of the cache

From Python: build(), up(), down(), is_up(), node_ready(), kubeconfig_path(),
kubectl_path(), audit_log_path(), audit_events(), restart_apiserver().

Everything built is cached by version under $DATAMESH_CACHE/testbed
(default ~/.cache/datamesh/testbed; testbed/common.py), next to the Go caches
used to build it (testbed/kubebuild.py); the running cluster lives in
kwok/clusters/datamesh/ there (kubeconfig.yaml, logs/, pids/).

Audit log: the apiserver logs every write (create, update, patch, delete,
deletecollection; leases and events left out) as JSON lines at Metadata level
to audit_log_path(). All clients share one user (kwok-admin), so tell writers
apart by userAgent (kubectl/..., kube-controller-manager/..., datamesh/...).

PersistentVolumeClaims: there is no storage driver, so `up` creates a default
StorageClass and starts a small provisioner loop (testbed/provisioner.py).

KWOK's PortForward, Logs and Exec CRDs (and their Cluster* variants) are enabled,
so the joined testbed (testbed/joined.py) can point pods at the native programs;
a running cluster created without them is recreated by `up`.

Settings: DATAMESH_TESTBED_KUBERNETES (release, default below),
DATAMESH_TESTBED_KWOK, DATAMESH_TESTBED_CLUSTER (cluster name, default
datamesh; its env file is then .testbed/env-NAME), DATAMESH_CACHE.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from testbed import cyclonus, provisioner
from testbed.common import (REPO, TestbedError, cache_root, cache_size, component_dir, logger, pid_alive, runs_from,
                            stop_process, wait_until)
from testbed.kubebuild import K8S_VERSION, KWOK_VERSION, build, cached

CLUSTER = os.environ.get("DATAMESH_TESTBED_CLUSTER", "datamesh")
NODE = "datamesh-node"
KWOK_CRDS = ("PortForward", "ClusterPortForward", "Exec", "ClusterExec", "Logs", "ClusterLogs")

log = logger("testbed")


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
        pids[pid_file.stem] = pid if pid and pid_alive(pid) and runs_from(pid, cluster_dir()) else None
    return pids


def is_up() -> bool:
    """True when the apiserver of the testbed answers /readyz."""
    if not kubeconfig_path().exists():
        return False
    return kubectl("get", "--raw", "/readyz", "--request-timeout=2s", check=False).returncode == 0


def has_kwok_crds() -> bool:
    """True when the cluster was created with KWOK's PortForward, Exec and Logs CRDs."""
    crds = [f"{kind.lower().removesuffix('s')}s.kwok.x-k8s.io" for kind in KWOK_CRDS]
    return kubectl("get", "crd", *crds, "--request-timeout=5s", check=False).returncode == 0


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
    if is_up() and node_ready() and server_version() == K8S_VERSION and has_kwok_crds():
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
            f"--enable-crds={','.join(KWOK_CRDS)}",
            "--wait", "60s",
        )
    with timed(timings, "apiserver ready"):
        wait_until("the apiserver to answer /readyz", is_up, 60, interval=0.2, errors=())
    with timed(timings, "node and storage class"):
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "List", "items": [node_manifest(), provisioner.storage_class_manifest()],
        }))
        start_provisioner()
        wait_until(f"node {NODE} to become Ready", node_ready, 60, interval=0.2, errors=())
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
    wait_until("the apiserver to answer /readyz again", is_up, timeout, interval=0.2, errors=())


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


def write_env_file() -> Path:
    env_file().parent.mkdir(parents=True, exist_ok=True)
    env_file().write_text(
        f"export KUBECONFIG={kubeconfig_path()}\n"
        "export DATAMESH_INVENTORY=testbed\n"
        f"export PATH={kubectl_path().parent}:$PATH\n"
    )
    return env_file()


# ---------------------------------------------------------------- the provisioner's process


def provisioner_pid_file() -> Path:
    return kwok_workdir() / f"{CLUSTER}.provisioner.pid"


def start_provisioner() -> None:
    provisioner.start(provisioner_pid_file(), cluster_dir() / "logs" / "provisioner.log",
                      {"DATAMESH_TESTBED_CLUSTER": CLUSTER, "DATAMESH_CACHE": str(cache_root().parent)})


def provisioner_running() -> bool:
    return provisioner.pid(provisioner_pid_file()) is not None


def stop_provisioner() -> None:
    provisioner.stop(provisioner_pid_file())


# ---------------------------------------------------------------- CLI


def print_timings(timings: dict) -> None:
    for what, seconds in timings.items():
        print(f"{what:40s} {seconds:8.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.cluster", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{build,up,down,env,size}")
    sub.add_parser("build", help="build or find every binary in the cache (and cyclonus, for the network policy tests)")
    sub.add_parser("up", help="build what is missing, start the cluster, write .testbed/env")
    sub.add_parser("down", help="stop the cluster; no process is left")
    sub.add_parser("env", help="print the shell exports for the running cluster")
    sub.add_parser("size", help="print the size of the cache")
    sub.add_parser("provision")  # the loop `up` starts (PVs, the joined testbed's links); not for people
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    try:
        if args.command == "build":
            start = time.monotonic()
            for name, path in {**build(timings), "cyclonus": cyclonus.build(timings=timings).parent}.items():
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
                raise TestbedError("the cluster testbed is not running: run `python -m testbed.cluster up`")
            print(write_env_file().read_text(), end="")
        elif args.command == "size":
            for name, size in cache_size().items():
                print(f"{name:40s} {size / 2**20:10.1f} MiB")
        elif args.command == "provision":
            from testbed import links  # it imports this module

            provisioner.provision_forever(kubeconfig_path(), [provisioner.provision_once, links.link_once])
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
