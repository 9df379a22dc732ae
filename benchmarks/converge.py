"""Benchmark: `invoke up` against `kubectl apply --server-side` and Ansible's kubernetes.core.k8s,
on a no-op and on a first converge, applying the same objects.

    python -m benchmarks.converge [--rounds 5] [--first-rounds 2] [--no-ansible]

On the cluster testbed (started if needed). The objects are exactly those `up` applies (rendered,
stamped, generated keys filled); kubectl and Ansible apply them server-side with our field
manager, so after one converge each tool's run is a no-op too.

- no-op: the three tools timed in alternation, whole process against whole process.
- first converge: the platform's namespaces deleted (and waited for) before each run; `up` against
  `kubectl apply` followed by `kubectl wait` for the same readiness (Deployments Available,
  StatefulSets' replicas ready, Jobs Complete), and against Ansible with `wait: true`.

Prints the medians, the ratios (targets: no-op <= 0.5x kubectl, first converge <= 1.0x kubectl
apply + wait), each tool's requests per run (kubectl's from its -v=6 log, ours from the report)
and writes (the audit log). Not a test: nothing is asserted. Ansible lives in its own virtual
environment (benchmarks/ansible.py), never in requirements.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import ansible
from datamesh import ROOT, inventory, playbook, role as roles
from datamesh.cluster import Cluster
from datamesh.manifests import dump_all
from testbed import cluster as testbed

REQUEST_LINE = re.compile(r'"Response" verb="(GET|PATCH|POST|PUT|DELETE)"')  # kubectl -v=6
NAMESPACES = ("jupyterhub", "data-platform", "sales-domain", "marketing-domain")


def timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"{' '.join(command[:4])} failed: {(result.stdout + result.stderr)[-2000:]}")
    return elapsed, result.stdout + result.stderr


def applied_objects(out: Path) -> list[dict]:
    """Write the exact objects `up` applies, one file per role, in playbook order."""
    inv = inventory.load("testbed")
    cluster = Cluster(inv)
    rendered = playbook.render_all(playbook.load("up").roles, inv)
    secrets: dict[str, str] = {}
    everything = []
    for index, (name, manifests) in enumerate(rendered.items()):
        desired = [item.desired for item in roles.check(cluster, manifests, secrets)]
        (out / f"{index:02d}-{name}.yaml").write_text(dump_all(desired))
        everything += desired
    return everything


def kubectl_waits(objects: list[dict]) -> list[list[str]]:
    """`kubectl wait` commands for the readiness `up` waits for, one per namespace and kind."""
    conditions = {"Deployment": "condition=Available", "Job": "condition=Complete"}
    groups: dict[tuple[str, str], list[str]] = {}
    for obj in objects:
        kind, meta = obj["kind"], obj["metadata"]
        if kind == "StatefulSet":
            condition = f"jsonpath={{.status.readyReplicas}}={obj['spec'].get('replicas', 1)}"
        elif kind in conditions:
            condition = conditions[kind]
        else:
            continue
        groups.setdefault((meta["namespace"], condition), []).append(f"{kind.lower()}/{meta['name']}")
    return [["wait", f"--for={condition}", "-n", namespace, "--timeout=600s", "-v=6", *names]
            for (namespace, condition), names in groups.items()]


def writes_since(mark: int, agent: str) -> int:
    with open(testbed.audit_log_path()) as handle:
        handle.seek(mark)
        events = [json.loads(line) for line in handle if line.strip()]
    return sum(1 for e in events if e.get("userAgent", "").startswith(agent) and e.get("stage") == "ResponseComplete")


def wipe(kubectl: str, env: dict) -> None:
    """The platform's namespaces deleted and gone, volumes and all: the next run starts from nothing."""
    subprocess.run([kubectl, "delete", "namespace", *NAMESPACES, "--ignore-not-found", "--wait=true", "--timeout=300s"],
                   env=env, check=True, capture_output=True)


class Tool:
    """One contender: its commands, and its times, requests and writes per run."""

    def __init__(self, name: str, commands: list[list[str]], agent: str, requests=None, env: dict | None = None):
        self.name, self.commands, self.agent, self.requests, self.env = name, commands, agent, requests, env
        self.seconds: list[float] = []
        self.writes: list[int] = []
        self.counted: list[int] = []

    def run(self, env: dict) -> None:
        mark = testbed.audit_log_path().stat().st_size
        total, logs = 0.0, ""
        for command in self.commands:
            seconds, log = timed(command, self.env or env)
            total, logs = total + seconds, logs + log
        self.seconds.append(total)
        self.writes.append(writes_since(mark, self.agent))
        self.counted.append(self.requests(logs) if self.requests else len(REQUEST_LINE.findall(logs)))

    def line(self, baseline: Tool | None) -> str:
        median = statistics.median(self.seconds)
        ratio = f"  {median / statistics.median(baseline.seconds):5.2f}x" if baseline else ""
        counted = "  n/a" if None in self.counted else f"{statistics.median(self.counted):5.0f}"
        return (f"  {self.name:<34} median {median:7.3f}s{ratio}  requests {counted}/run  "
                f"writes {statistics.median(self.writes):4.0f}/run")


def rounds(tools: list[Tool], count: int, env: dict, before=None) -> None:
    for _ in range(count):
        for tool in tools:
            if before:
                before()
            tool.run(env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="no-op rounds")
    parser.add_argument("--first-rounds", type=int, default=2, help="first-converge rounds (0: skip them)")
    parser.add_argument("--no-ansible", action="store_true", help="leave Ansible out")
    args = parser.parse_args()
    kubeconfig = testbed.up()
    os.environ.update(KUBECONFIG=str(kubeconfig), DATAMESH_INVENTORY="testbed")
    env = dict(os.environ)
    kubectl = str(testbed.kubectl_path())
    report = Path(tempfile.mkdtemp()) / "report.json"
    up = [sys.executable, "-m", "invoke", "up", "--report-json", str(report)]
    ours = lambda _: sum(json.loads(report.read_text())["requests"].values())  # noqa: E731
    timed(up, env)  # converge first: the no-op rounds start from a converged platform

    with tempfile.TemporaryDirectory() as folder:
        manifests = Path(folder) / "objects"
        manifests.mkdir()
        objects = applied_objects(manifests)
        apply = [kubectl, "apply", "--server-side", "--field-manager=datamesh", "--force-conflicts", "-v=6", "-f", str(manifests)]
        noop = [Tool("datamesh up", [up], "datamesh/", ours), Tool("kubectl apply --server-side", [apply], "kubectl")]
        first = [Tool("datamesh up", [up], "datamesh/", ours),
                 Tool("kubectl apply + kubectl wait", [apply] + [[kubectl, *w] for w in kubectl_waits(objects)], "kubectl")]
        if not args.no_ansible:  # its reads are not counted: the audit log holds writes only
            for tools, wait in ((noop, False), (first, True)):
                argv, ansible_env = ansible.command(ansible.write_playbook(Path(folder) / f"ansible-{wait}", manifests, wait),
                                                    kubeconfig, env)
                tools.append(Tool("ansible kubernetes.core.k8s" + (", wait" if wait else ""), [argv], "OpenAPI-Generator",
                                  requests=lambda _: None, env=ansible_env))
            noop[-1].run(env)  # a warm-up: kubernetes.core keeps its discovery in /tmp after its first run
            noop[-1].seconds.clear(), noop[-1].writes.clear(), noop[-1].counted.clear()
        rounds(noop, args.rounds, env)
        rounds(first, args.first_rounds, env, before=lambda: wipe(kubectl, env))
        if args.first_rounds:
            timed(up, env)  # leave the platform converged

    cpus = os.cpu_count()
    print(f"{time.strftime('%Y-%m-%d')}, {cpus} CPUs, {len(objects)} objects; no-op rounds {args.rounds}, "
          f"first-converge rounds {args.first_rounds}")
    print("no-op (after a converge):")
    for tool in noop:
        print(tool.line(None if tool is noop[1] else noop[1]))
    if args.first_rounds:
        print("first converge (from no namespace of ours):")
        for tool in first:
            print(tool.line(None if tool is first[1] else first[1]))
    print("ratios are against kubectl; targets: no-op <= 0.50x, first converge <= 1.00x")


if __name__ == "__main__":
    main()
