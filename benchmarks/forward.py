"""Benchmark: a port-forward through the API server (datamesh/endpoints.py) against a direct connection.

    invoke testbed.up && . .testbed/env && invoke up --inventory testbed
    python -m benchmarks.forward [--rounds 5] [--megabytes 100]

On the joined testbed, against the object store (the S3 server the service testbed runs):
- opening a forward (pick the pod, listen) and its first request (one websocket handshake through
  kube-apiserver and KWOK, then an S3 ListBuckets) against the same request made directly;
- throughput of a PUT and a GET of one object of --megabytes through the forward against the same
  transfer made directly to the server's address and through `kubectl port-forward`, in the same run.
Prints medians and ratios. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from typing import Iterator

from benchmarks import joined
from datamesh import probes
from testbed import cluster as testbed


def transfer(s3, bucket: str, key: str, payload: bytes) -> tuple[float, float]:
    """Seconds to PUT then GET the payload (read to the end)."""
    start = time.perf_counter()
    s3.put_object(bucket, key, io.BytesIO(payload), len(payload), part_size=16 * 2**20)
    put = time.perf_counter() - start
    start = time.perf_counter()
    response = s3.get_object(bucket, key)
    received = sum(len(chunk) for chunk in response.stream(2**20))
    response.close()
    get = time.perf_counter() - start
    assert received == len(payload)
    return put, get


@contextlib.contextmanager
def kubectl_forward(namespace: str, service: str, port: int) -> Iterator[tuple[str, int]]:
    """`kubectl port-forward svc/NAME :PORT` of the testbed's kubectl: the address it listens on."""
    proc = subprocess.Popen([str(testbed.kubectl_path()), "-n", namespace, "port-forward", f"svc/{service}", f":{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not found:
            sys.exit(f"kubectl port-forward did not start: {line}")
        yield "127.0.0.1", int(found.group(1))
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.forward", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args(argv)
    reach, login = joined.reach("minio")
    bucket = reach.inventory["minio"]["bucket"]
    direct = "minio.data-platform.svc.cluster.local:9000"  # the service testbed's address of the S3 server
    payload = os.urandom(args.megabytes * 2**20)
    key = f"processed/benchmark-{uuid.uuid4().hex}"
    opens, firsts, firsts_direct = [], [], []
    put_times, get_times, put_direct, get_direct, put_kubectl, get_kubectl = [], [], [], [], [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        probes.s3_buckets(direct, login.user, login.password)
        firsts_direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        with reach.open("minio") as (host, port):
            opens.append(time.perf_counter() - start)
            probes.s3_buckets(f"{host}:{port}", login.user, login.password)
            firsts.append(time.perf_counter() - start)
            put, get = transfer(probes.s3_client(f"{host}:{port}", login.user, login.password), bucket, key, payload)
            put_times.append(put)
            get_times.append(get)
        put, get = transfer(probes.s3_client(direct, login.user, login.password), bucket, key, payload)
        put_direct.append(put)
        get_direct.append(get)
        with kubectl_forward(reach.namespace("minio"), "minio", 9000) as (host, port):
            put, get = transfer(probes.s3_client(f"{host}:{port}", login.user, login.password), bucket, key, payload)
        put_kubectl.append(put)
        get_kubectl.append(get)
    probes.s3_client(direct, login.user, login.password).remove_object(bucket, key)

    def mbps(seconds: list[float]) -> float:
        return args.megabytes / statistics.median(seconds)

    med = statistics.median
    print(f"{args.rounds} rounds, {args.megabytes} MB objects, {os.cpu_count()} CPUs")
    print(f"open a forward (pick the pod, listen)          {med(opens) * 1000:8.1f} ms")
    print(f"open + first request (ListBuckets)             {med(firsts) * 1000:8.1f} ms   "
          f"direct {med(firsts_direct) * 1000:6.1f} ms   ratio {med(firsts) / med(firsts_direct):5.1f}x")
    for verb, ours, direct_times, kubectl_times in (("PUT", put_times, put_direct, put_kubectl),
                                                    ("GET", get_times, get_direct, get_kubectl)):
        print(f"{verb} throughput through the forward             {mbps(ours):8.1f} MB/s "
              f"direct {mbps(direct_times):6.1f} MB/s ratio {mbps(ours) / mbps(direct_times):5.2f}   "
              f"kubectl port-forward {mbps(kubectl_times):6.1f} MB/s ratio {mbps(ours) / mbps(kubectl_times):5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
