"""Benchmark: a no-op `invoke up` against `kubectl apply --server-side` of the same objects.

    python -m benchmarks.converge [--rounds 5] [--only namespaces,credentials,postgres]

On the cluster testbed (started if needed), after one converging run, both tools are timed in
alternation on the objects `up` would apply (rendered, stamped, generated keys filled), kubectl
with our field manager so that its apply is a no-op too. Prints median times, their ratio and
the requests each made (kubectl's from its -v=6 log, ours from the report); the audit log gives
the writes. Target: datamesh no slower than 1.2x kubectl. Not a test: nothing is asserted.
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

from datamesh import ROOT, inventory, playbook, role as roles
from datamesh.cluster import Cluster
from datamesh.manifests import dump_all
from testbed import cluster as testbed

REQUEST_LINE = re.compile(r'"Response" verb="(GET|PATCH|POST|PUT|DELETE)"')  # kubectl -v=6


def timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"{' '.join(command[:4])} failed: {result.stderr[-2000:]}")
    return elapsed, result.stdout + result.stderr


def applied_objects(selection: list[str], out: Path) -> int:
    """Write the exact objects `up` applies, one file per role, in playbook order."""
    inv = inventory.load("testbed")
    cluster = Cluster(inv)
    book = playbook.load("up")
    rendered = playbook.render_all(playbook.select(book, selection), inv)
    secrets: dict[str, str] = {}
    count = 0
    for index, (name, manifests) in enumerate(rendered.items()):
        desired = [item.desired for item in roles.check(cluster, manifests, secrets)]
        (out / f"{index:02d}-{name}.yaml").write_text(dump_all(desired))
        count += len(desired)
    return count


def writes_since(mark: int, agent: str) -> int:
    with open(testbed.audit_log_path()) as handle:
        handle.seek(mark)
        return sum(1 for line in handle if line.strip()
                   and json.loads(line).get("userAgent", "").startswith(agent)
                   and json.loads(line).get("stage") == "ResponseComplete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="roles to converge (default: the whole playbook)")
    args = parser.parse_args()
    kubeconfig = testbed.up()
    os.environ.update(KUBECONFIG=str(kubeconfig), DATAMESH_INVENTORY="testbed")
    env = dict(os.environ)
    selection = playbook.parse_list(args.only)
    only = ["--only", args.only] if selection else []
    report = Path(tempfile.mkdtemp()) / "report.json"
    up = [sys.executable, "-m", "invoke", "up", *only, "--report-json", str(report)]
    timed(up, env)  # converge first: what follows is the no-op case

    with tempfile.TemporaryDirectory() as folder:
        count = applied_objects(selection, Path(folder))
        kubectl = [str(testbed.kubectl_path()), "apply", "--server-side", "--field-manager=datamesh",
                   "--force-conflicts", "-v=6", "-f", folder]
        ours, theirs = [], []
        ours_writes = theirs_writes = 0
        for _ in range(args.rounds):
            mark = testbed.audit_log_path().stat().st_size
            seconds, _ = timed(up, env)
            ours.append(seconds)
            ours_writes += writes_since(mark, "datamesh/")
            mark = testbed.audit_log_path().stat().st_size
            seconds, log = timed(kubectl, env)
            theirs.append(seconds)
            theirs_writes += writes_since(mark, "kubectl")
            kubectl_requests = len(REQUEST_LINE.findall(log))
        our_requests = sum(json.loads(report.read_text())["requests"].values())
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"objects: {count}, rounds: {args.rounds}")
        print(f"datamesh up (no-op):          median {statistics.median(ours):.3f}s  "
              f"requests {our_requests}/run  writes {ours_writes / args.rounds:.0f}/run")
        print(f"kubectl apply --server-side:  median {statistics.median(theirs):.3f}s  "
              f"requests {kubectl_requests}/run  writes {theirs_writes / args.rounds:.0f}/run")
        print(f"ratio datamesh/kubectl: {ratio:.2f}x (target <= 1.20x)")


if __name__ == "__main__":
    main()
