"""One run at a time: `up`, `down` and `seed` hold a coordination.k8s.io Lease while they write.

The Lease is `datamesh-<platform namespace>` in the `default` namespace: the platform's own
namespace does not exist before the first `up` and goes with `down --purge`, and a lock must
outlive both. Its holder renews it every RENEW_SECONDS from a thread; a second run waits up to
`--lock-timeout` seconds (`timeouts.lock`), saying who holds it since when, then refuses.

Expiry is judged as client-go's leader election does, by the waiter's own clock: a lease whose
record has not changed for its leaseDurationSeconds is free, so clocks that disagree between
machines never hand the lock to two runs; one renewed longer ago than twice that by our clock is
free at once. A SIGKILLed holder is therefore taken over within LEASE_SECONDS. A holder that
could not renew in time, and so may have been taken over, stops before its next write.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from datetime import datetime, timezone

import tenacity

from datamesh.cluster import Cluster
from datamesh.errors import DatameshError
from datamesh.kube import ApiError, timestamp

LEASE_SECONDS = 15
RENEW_SECONDS = 5
NAMESPACE = "default"


def identity(task: str) -> str:
    """Who holds the lock, in words a colleague recognises: `invoke up` by alice@laptop (pid 4242)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"`invoke {task}` by {user}@{socket.gethostname()} (pid {os.getpid()})"


def now_text() -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds, UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Waiting(Exception):
    """The lease is held by another run that is alive."""


class Lock:
    """`with Lock(cluster, platform, task, timeout, say):` holds the platform's Lease for the block."""

    def __init__(self, cluster: Cluster, platform: str, task: str, timeout: float, say):
        self.cluster = cluster
        self.name = f"datamesh-{platform}"
        self.me = identity(task)
        self.timeout = timeout
        self.say = say
        self.lease: dict | None = None
        self.lost = ""
        self._seen: tuple[str, float] = ("", 0.0)  # the other holder's resourceVersion, when we first saw it
        self._told = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"Lease {NAMESPACE}/{self.name}"

    # -- taking and giving back ------------------------------------------------------------

    def __enter__(self) -> Lock:
        retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(Waiting), stop=tenacity.stop_after_delay(self.timeout),
                                     wait=tenacity.wait_fixed(1), reraise=True)
        try:
            self.lease = retrying(self._take)
        except Waiting as held:
            raise DatameshError(
                f"another run holds the lock ({self.where}): {held}; it was still renewing after {self.timeout:.0f} s. "
                f"Wait for it to finish, or pass a longer --lock-timeout; a run that was killed is taken over "
                f"{LEASE_SECONDS} s after its last renewal."
            ) from None
        self.cluster.guard = self.check
        self._thread = threading.Thread(target=self._renew_loop, name="datamesh-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.cluster.guard = None
        if self.lease is not None and not self.lost:
            spec = {**self.lease["spec"], "holderIdentity": None, "renewTime": now_text(), "leaseDurationSeconds": 1}
            try:
                self.cluster.replace({**self.lease, "spec": spec})
            except (ApiError, DatameshError):
                pass  # not given back: the next run takes it over after LEASE_SECONDS

    def _take(self) -> dict:
        """The lease, made ours; Waiting while another live run holds it."""
        path = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"namespace": NAMESPACE, "name": self.name}}
        live = self.cluster.get(path)
        mine = {"holderIdentity": self.me, "leaseDurationSeconds": LEASE_SECONDS, "acquireTime": now_text(),
                "renewTime": now_text()}
        try:
            if live is None:
                return self.cluster.create({**path, "spec": mine})
            self._check_free(live)
            mine["leaseTransitions"] = (live["spec"].get("leaseTransitions") or 0) + 1
            return self.cluster.replace({**live, "spec": mine})
        except ApiError as exc:
            if exc.status == 409:  # another run took or renewed it between our read and our write
                raise Waiting("another run took it a moment ago") from None
            raise DatameshError(f"cannot take the lock {self.where} ({exc.status}: {exc}).") from None

    def _check_free(self, live: dict) -> None:
        spec = live.get("spec") or {}
        holder = spec.get("holderIdentity")
        if not holder:
            return
        version = live["metadata"]["resourceVersion"]
        if self._seen[0] != version:
            self._seen = (version, time.monotonic())
        duration = spec.get("leaseDurationSeconds") or LEASE_SECONDS
        renewed = spec.get("renewTime") or spec.get("acquireTime")
        ago = time.time() - timestamp(renewed) if renewed else None
        if time.monotonic() - self._seen[1] >= duration or (ago is not None and ago > 2 * duration):
            self.say(f"lock: taking over {self.where} from {holder}, which stopped renewing it")
            return
        since = spec.get("acquireTime") or renewed or "?"
        news = f"held by {holder} since {since}"
        if news != self._told:
            self._told = news
            self.say(f"lock: waiting up to {self.timeout:.0f} s for {self.where}, {news} (renewed {ago or 0:.0f} s ago)")
        raise Waiting(news)

    # -- keeping it --------------------------------------------------------------------------

    def _renew_loop(self) -> None:
        renewed = time.monotonic()
        while not self._stop.wait(RENEW_SECONDS):
            spec = {**self.lease["spec"], "renewTime": now_text()}
            try:
                self.lease = self.cluster.replace({**self.lease, "spec": spec})
                renewed = time.monotonic()
            except (ApiError, DatameshError) as exc:
                if getattr(exc, "status", None) == 409 or time.monotonic() - renewed >= LEASE_SECONDS:
                    self.lost = f"could not renew {self.where} for {time.monotonic() - renewed:.0f} s ({exc})"
                    return

    def check(self) -> None:
        """Called before each write: a run that may have lost the lock writes nothing more."""
        if self.lost:
            raise DatameshError(f"stopped before writing: this run {self.lost}, so another run may hold it now; "
                                "run the command again.")
