"""One run at a time (datamesh/lock.py) against a real kube-apiserver: two `up`s started together
never interleave their writes, a live holder makes the next run wait and then refuse, and a
SIGKILLed holder is taken over once its lease expires."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from datamesh import ROOT, inventory
from datamesh.cluster import Cluster
from datamesh.errors import DatameshError
from datamesh.lock import LEASE_SECONDS, NAMESPACE, Lock
from tests.integration.conftest import wipe

LEASE = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"namespace": NAMESPACE, "name": "datamesh-data-platform"}}


@pytest.fixture
def cluster(env, monkeypatch) -> Cluster:
    monkeypatch.setenv("KUBECONFIG", env["KUBECONFIG"])
    made = Cluster(inventory.load("testbed"))
    made.ping()
    return made


def start_up(env, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "invoke", "up", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def writers(events: list[dict]) -> list[str]:
    """The user agents of the writes, in the order they were made, each run once."""
    return list(dict.fromkeys(e["userAgent"] for e in events))


def test_two_ups_started_together_never_interleave_their_writes(kubectl, env, audit):
    wipe(kubectl)
    mark = audit.mark()
    first, second = start_up(env), start_up(env)
    outputs = [run.communicate(timeout=600)[0] for run in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    writes = audit.writes(mark)
    assert len(writers(writes)) == 1, f"writes came from {writers(writes)}"  # the other run found nothing to change
    waited = [out for out in outputs if "lock: waiting" in out]
    assert len(waited) == 1 and re.search(r"held by `invoke up` by \S+ \(pid \d+\) since", waited[0])
    assert re.search(r"total +: ok=\d+ +changed=0 +failed=0", waited[0])


def test_a_run_waits_for_a_live_holder_then_refuses_naming_it(cluster, datamesh):
    with Lock(cluster, "data-platform", "seed", timeout=5, say=print) as held:
        run = datamesh("up", "--lock-timeout", "3")
        assert run.returncode == 1, run.stdout + run.stderr
        assert "another run holds the lock (Lease default/datamesh-data-platform)" in run.stderr
        assert held.me in run.stderr and held.me in run.stdout  # waiting, it said who holds it
        assert not held.lost
    assert not (cluster.get(LEASE)["spec"].get("holderIdentity"))  # given back on the way out


def test_a_killed_holder_is_taken_over_after_the_lease_expires(kubectl, env, cluster):
    wipe(kubectl)
    holder = start_up(env)
    deadline = time.monotonic() + 60
    while f"(pid {holder.pid})" not in (((cluster.get(LEASE) or {}).get("spec") or {}).get("holderIdentity") or ""):
        assert time.monotonic() < deadline and holder.poll() is None, "the first up never took the lock"
        time.sleep(0.2)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    killed = time.monotonic()
    taker = start_up(env, "--lock-timeout", "60")
    output = taker.communicate(timeout=600)[0]
    assert taker.returncode == 0, output
    assert "lock: taking over" in output and f"(pid {holder.pid}), which stopped renewing it" in output
    assert time.monotonic() - killed >= LEASE_SECONDS - 1  # it waited for the expiry, not less
    assert "failed=0" in next(line for line in output.splitlines() if line.startswith("total "))


def test_a_holder_that_lost_its_lease_writes_nothing_more(cluster):
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "default", "name": "lock-probe"}}
    try:
        with Lock(cluster, "data-platform", "up", timeout=5, say=print) as held:
            live = cluster.get(LEASE)
            cluster.replace({**live, "spec": {**live["spec"], "holderIdentity": "another run"}})
            deadline = time.monotonic() + 3 * LEASE_SECONDS
            while not held.lost:
                assert time.monotonic() < deadline, "the holder never noticed"
                time.sleep(0.2)
            with pytest.raises(DatameshError, match="stopped before writing: this run could not renew"):
                cluster.apply(probe)
        assert cluster.get(probe) is None and cluster.get(LEASE)["spec"]["holderIdentity"] == "another run"
    finally:
        cluster.delete(LEASE)
