"""A soak on the cluster testbed, on demand (`pytest -m soak`, about 10 minutes; not in CI): twenty
cycles of `up`, `down --components <random non-empty subset> --cascade`, `up`. Afterwards `plan`
shows no change, nothing labelled ours is orphaned, the volumes are the first run's, and each
run's peak memory stays flat (printed per cycle: `pytest -m soak -s`)."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
import yaml

from datamesh import ROOT, playbook
from tests.integration.conftest import ours, write_inventory
from testbed import cluster as testbed

CYCLES = 20
pytestmark = pytest.mark.soak


def run(env, *args: str) -> tuple[str, int]:
    """`invoke ...` as a user runs it; its output and its peak resident memory in KiB (wait4's rusage)."""
    proc = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"invoke {' '.join(args)} failed:\n{output[-3000:]}"
    return output, usage.ru_maxrss


def rendered_identities(env, tmp_path) -> set[str]:
    out = tmp_path / "rendered"
    run(env, "render", "--out", str(out))
    found = set()
    for path in sorted(out.glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            meta = obj["metadata"]
            found.add(f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}")
            for claim in (obj.get("spec") or {}).get("volumeClaimTemplates") or []:  # the StatefulSet's one replica
                found.add(f"PersistentVolumeClaim {meta['namespace']}/{claim['metadata']['name']}-{meta['name']}-0")
    return found


def volumes(kubectl) -> dict[str, str]:
    return {key: obj["metadata"]["uid"] for key, obj in ours(kubectl).items() if key.startswith("PersistentVolumeClaim ")}


@pytest.fixture
def soak_env(env, tmp_path) -> dict:
    """The testbed's inventory, for whichever cluster testbed runs (DATAMESH_TESTBED_CLUSTER=soak keeps the
    soak off the developer's cluster)."""
    inventory = write_inventory(tmp_path, {"cluster": {"context": f"kwok-{testbed.CLUSTER}"}})
    return {**env, "DATAMESH_INVENTORY": str(inventory)}


def test_twenty_cycles_of_up_and_partial_down_leave_the_platform_as_it_was(soak_env, kubectl, tmp_path):
    env = soak_env
    roles = playbook.role_names("up")
    chance = random.Random(int(os.environ.get("DATAMESH_SOAK_SEED", "16")))
    _, first_rss = run(env, "up")
    first_volumes = volumes(kubectl)
    peaks = []
    for cycle in range(1, CYCLES + 1):
        chosen = sorted(chance.sample(roles, chance.randint(1, 3)))
        _, down_rss = run(env, "down", "--components", ",".join(chosen), "--cascade")
        _, up_rss = run(env, "up")
        peaks.append(max(down_rss, up_rss))
        print(f"cycle {cycle:2}: down {','.join(chosen):<40} peak RSS down {down_rss // 1024} MiB, up {up_rss // 1024} MiB")

    plan, _ = run(env, "plan")
    assert "plan: 0 to change" in plan, plan[-3000:]
    left = set(ours(kubectl)) - rendered_identities(env, tmp_path)
    assert not left, f"orphaned: {sorted(left)}"
    assert volumes(kubectl) == first_volumes  # the same claims: not one was deleted and made again
    assert max(peaks[-5:]) <= 1.25 * max(first_rss, peaks[0]), f"peak RSS per cycle (KiB): {peaks}"
