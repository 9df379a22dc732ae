"""cyclonus, the NetworkPolicy engine that decides which flows rendered policies allow, without a cluster.

    cyclonus-v0.5.6/bin/cyclonus    built from the Go module proxy (Apache-2.0), cached by version

`verdicts(policies, flows)` runs `cyclonus analyze --mode query-traffic` over the policies (one per
file: cyclonus reads only the first document of a multi-document file) and a traffic file, and
returns one allowed-or-not per flow, in order. A flow is cyclonus's own traffic shape:

    {"Source": {"Internal": {"PodLabels": {...}, "NamespaceLabels": {...}, "Namespace": "ns"}, "IP": "10.0.0.1"},
     "Destination": {...the same...}, "ResolvedPort": 5432, "ResolvedPortName": "postgres", "Protocol": "TCP"}

and a source outside the cluster is just {"IP": "..."}.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import yaml

from testbed.common import TestbedError, cache_root, go_env
from testbed.kubebuild import ensure, go

VERSION = os.environ.get("DATAMESH_TESTBED_CYCLONUS", "v0.5.6")
MODULE = "github.com/mattfenwick/cyclonus/cmd/cyclonus"
VERDICT = re.compile(r"^\|\s*IS ALLOWED\?\s*\|\s*(TRUE|FALSE)\s*\|", re.M)


def build(version: str = VERSION, timings: dict | None = None) -> Path:
    """The cyclonus binary of `version`, built with `go install` the first time (85 s on 2 cores)."""
    def install(tmp: Path) -> None:
        env = go_env()
        env["GOBIN"] = str(tmp / "bin")
        go("install", "-ldflags", "-s -w", f"{MODULE}@{version}", cwd=cache_root() / "go", env=env)

    (cache_root() / "go").mkdir(parents=True, exist_ok=True)
    return ensure("cyclonus", version, ("cyclonus",), install, timings if timings is not None else {}) / "cyclonus"


def internal(namespace: str, namespace_labels: dict[str, str], pod_labels: dict[str, str], ip: str) -> dict:
    """A pod as cyclonus's traffic file names it."""
    return {"Internal": {"PodLabels": pod_labels, "NamespaceLabels": namespace_labels, "Namespace": namespace}, "IP": ip}


def external(ip: str) -> dict:
    """A source outside the cluster: an address and nothing else."""
    return {"IP": ip}


def flow(source: dict, destination: dict, port: int, port_name: str = "") -> dict:
    return {"Source": source, "Destination": destination, "ResolvedPort": port, "ResolvedPortName": port_name,
            "Protocol": "TCP"}


def verdicts(policies: list[dict], flows: list[dict], binary: Path | None = None) -> list[bool]:
    """Whether `policies` allow each of `flows`, in order, as cyclonus decides it."""
    binary = binary or build()
    with tempfile.TemporaryDirectory(prefix="cyclonus-") as tmp:
        folder = Path(tmp) / "policies"
        folder.mkdir()
        for index, policy in enumerate(policies):
            (folder / f"{index:03d}.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
        traffic = Path(tmp) / "traffic.json"
        traffic.write_text(json.dumps(flows))
        cmd = [str(binary), "analyze", "--mode", "query-traffic", "--policy-path", str(folder),
               "--traffic-path", str(traffic)]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise TestbedError(f"cyclonus failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    return parse(proc.stdout, flows)


def parse(output: str, flows: list[dict]) -> list[bool]:
    """One verdict per flow from `analyze --mode query-traffic`'s report: each flow's block opens
    with its port (`| 5432 (postgres) on TCP |`) and ends with `| IS ALLOWED? | TRUE |` or `FALSE`."""
    found = [value == "TRUE" for value in VERDICT.findall(output)]
    ports = [int(port) for port in re.findall(r"^Traffic:\n(?:[+|].*\n)*?\|\s*(\d+)\b[^|]* on TCP\s*\|", output, re.M)]
    if len(found) != len(flows) or ports != [f["ResolvedPort"] for f in flows]:
        raise TestbedError(f"cyclonus gave {len(found)} verdicts (ports {ports[:5]}...) for {len(flows)} flows; "
                           "its report format may have changed: run it by hand and read testbed/cyclonus.py's parse")
    return found
