"""The joined testbed: the cluster testbed's fake platform pods stand for the service testbed's
native programs, so the tool's own code (port-forward and exec through the API server, logs)
reaches the real programs exactly as it does on Docker Desktop.

Why: alone, the cluster testbed has pods without programs and the service testbed has programs
without pods, while the tool reaches a service only through its pod. `up` needs both running. It
publishes the service testbed's credentials as the credentials role's Secrets
(testbed/credentials.py), so `invoke up --inventory testbed` keeps them, writes the joined state,
and (re)starts the cluster's background loop, whose link step (testbed/links.py) keeps one KWOK
PortForward, Logs and Exec per platform pod. `down` deletes those objects; the Secrets stay (the
tool adopts them) until the cluster goes.

Differences from a real kubelet: several pods of one workload reach the same program; exec runs
on the host as root, in the program's working directory, with the KWOK controller's environment
plus HOSTNAME, not in the container's filesystem; KWOK 0.8.0 never closes an exec's stdin (a
command reading stdin to its end hangs) and reports any non-zero exit as exit 1 with "error
executing command"; every container of a pod (init ones too) shows the program's log, copied in
CRI format with the time of the copy; replacing or deleting a pod neither restarts nor stops the
program; Grafana and Job pods have a log line saying why nothing runs behind them, and a
port-forward to Grafana fails with KWOK's "no forward found".

    python -m testbed.joined up [--inventory NAME] | down | status
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from datamesh.manifests import MANAGED_BY
from testbed import cluster, links
from testbed.common import REPO, TestbedError, logger, pid_alive
from testbed.kubeapi import Api
from testbed.links import KINDS, MANAGER, joined_dir, locked, state_file

SECTIONS = {"s3": "s3", "hive-metastore": "hive", "trino": "trino", "hub": "jupyterhub", "nginx": "nginx"}

log = logger("joined")


# ------------------------------------------------------------------ up / down / status


def up(inventory: str = "testbed", timeout: float = 60) -> dict:
    """Publish the credentials, write the joined state, (re)start the loop so it runs this code,
    and wait until every platform pod that exists is linked."""
    from testbed import credentials, services
    from testbed.processes import Procs

    if not cluster.is_up():
        raise TestbedError("the cluster testbed is not running: start it with `python -m testbed.cluster up`")
    if not cluster.has_kwok_crds():
        raise TestbedError("the cluster testbed was created without KWOK's PortForward, Exec and Logs CRDs: "
                           "run `python -m testbed.cluster up` to recreate it")
    entries = Procs().entries
    stopped = [name for name, e in entries.items() if not pid_alive(e["pid"])]
    if not entries or stopped:
        raise TestbedError(f"the service testbed is not running{' (' + ', '.join(stopped) + ' stopped)' if stopped else ''}:"
                           " start it with `python -m testbed.services up`")
    config = services.saved_config()
    namespaces = credentials.publish(config["secrets"], inventory)
    state = {"namespaces": namespaces, "processes": processes(config, entries), "repo": str(REPO)}
    with locked():
        tmp = state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, state_file())
    cluster.start_provisioner()
    loop_log = cluster.cluster_dir() / "logs" / "provisioner.log"
    time.sleep(1)
    if not cluster.provisioner_running():
        raise TestbedError(f"the cluster's background loop ended at its start: see {loop_log}")
    api = Api(cluster.kubeconfig_path())
    deadline = time.monotonic() + timeout
    while unlinked := links.missing(*links.survey(api, state)[:2]):
        if time.monotonic() > deadline:
            raise TestbedError(f"{len(unlinked)} object(s) still missing after {timeout:.0f}s, e.g. {unlinked[0]}; "
                               f"see {loop_log}")
        time.sleep(0.2)
    log(f"joined: the platform pods of {', '.join(namespaces)} reach the service testbed's programs")
    return state


def processes(config: dict, entries: dict) -> dict:
    """Native process -> the Service names it serves, its log and its folder (its working directory)."""
    hosts = {name: [s["host"] for s in inst["service"]] for name, inst in config["postgres"]["instances"].items()}
    hosts.update({proc: [s["host"] for s in config.get(section, {}).get("service", [])]
                  for proc, section in SECTIONS.items()})
    hosts["proxy"] = [s["host"] for s in config.get("jupyterhub", {}).get("proxy", {}).get("service", [])]
    out = {}
    for name, served in hosts.items():
        if name in entries:
            e = entries[name]
            try:
                workdir = os.readlink(f"/proc/{e['pid']}/cwd")
            except OSError:
                workdir = str(Path(e["log"]).parent)
            out[name] = {"hosts": sorted(set(served)), "log": e["log"], "workdir": workdir}
    return out


def down() -> None:
    """Forget the joined state and delete every testbed-managed KWOK object (Secrets stay: the tool adopts them)."""
    if not joined_dir().exists():
        return
    with locked():
        state_file().unlink(missing_ok=True)
        if cluster.is_up():
            kinds = ",".join(f"{plural}.kwok.x-k8s.io" for plural in KINDS.values())
            cluster.kubectl("delete", kinds, "--all-namespaces", "-l", f"{MANAGED_BY}={MANAGER}",
                            "--ignore-not-found", "--wait=false")
        for path in (joined_dir() / "logs").rglob("*"):
            if path.is_file():
                path.unlink()
    log("joined testbed undone: KWOK objects removed")


def status() -> dict:
    if not state_file().exists() or not cluster.is_up():
        return {"joined": False}
    state = json.loads(state_file().read_text())
    want, have, _ = links.survey(Api(cluster.kubeconfig_path()), state)
    return {"joined": True, "loop": cluster.provisioner_running(), "namespaces": state["namespaces"],
            "objects": len(have), "missing": links.missing(want, have),
            "pods": sorted({f"{ns}/{name}" for _, ns, name in want})}


# ------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.joined", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="link the cluster testbed's pods to the service testbed's programs")
    p_up.add_argument("--inventory", default="testbed", help="inventory whose credentials and namespaces to use")
    sub.add_parser("down", help="remove the links (KWOK objects); both testbeds keep running")
    sub.add_parser("status", help="whether the pods are linked")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up(args.inventory)
        elif args.command == "down":
            down()
        else:
            st = status()
            if not st["joined"]:
                print("joined testbed: not joined")
                return 3
            print(f"loop {'running' if st['loop'] else 'STOPPED'}; {len(st['pods'])} pod(s) in "
                  f"{', '.join(st['namespaces'])}; {st['objects']} KWOK object(s); missing: {len(st['missing'])}")
            for ref in st["missing"]:
                print(f"  missing {ref}")
            return 0 if st["loop"] and not st["missing"] else 1
    except TestbedError as e:
        print(f"joined testbed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
