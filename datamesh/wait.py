"""Readiness: one predicate per kind, one tenacity loop, and a timeout that explains itself.

A predicate takes the live object and answers (ready, why-not). Kinds without a predicate are
ready once they exist. On timeout the error names the object, its pods' phase and container
states, and the last events, because "timed out" alone sends people to kubectl for an hour.
Image pulls have a budget of their own (datamesh/pulls.py): a pull in progress pauses the
readiness budget, and a pull error ends the wait at once.
"""

from __future__ import annotations

import time
from typing import Callable

import tenacity

from datamesh.cluster import Cluster
from datamesh.diagnosis import WORKLOADS, explain, pod_selector
from datamesh.errors import DatameshError
from datamesh.kube import ref
from datamesh.pulls import PULLS_AFTER, Clock, ImagePullFailed, duration, images_pulling

Predicate = Callable[[dict], "tuple[bool, str]"]


class JobFailed(Exception):
    """A Job reported Failed: waiting longer cannot help. `job` is the live Job."""

    def __init__(self, job: dict, why: str):
        self.job = job
        super().__init__(f"{ref(job)} failed: {why}".strip())


def _generation_current(obj: dict) -> bool:
    return obj.get("status", {}).get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)


def statefulset_ready(obj: dict) -> tuple[bool, str]:
    status, want = obj.get("status", {}), obj["spec"].get("replicas", 1)
    if not _generation_current(obj):
        return False, "controller has not seen the latest spec"
    ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
    if ready < want or updated < want:
        return False, f"{ready}/{want} ready, {updated}/{want} updated"
    if status.get("currentRevision") and status.get("updateRevision") and status["currentRevision"] != status["updateRevision"]:
        return False, "rolling update in progress"
    return True, f"{ready}/{want} ready"


def deployment_ready(obj: dict) -> tuple[bool, str]:
    status, want = obj.get("status", {}), obj["spec"].get("replicas", 1)
    if not _generation_current(obj):
        return False, "controller has not seen the latest spec"
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    unavailable = status.get("unavailableReplicas", 0)
    if updated < want or available < want or unavailable or status.get("replicas", 0) > want:
        return False, f"{available}/{want} available, {updated}/{want} updated"
    return True, f"{available}/{want} available"


def job_complete(obj: dict) -> tuple[bool, str]:
    for condition in obj.get("status", {}).get("conditions", []):
        if condition.get("status") != "True":
            continue
        if condition["type"] in ("Complete", "SuccessCriteriaMet"):
            return True, "complete"
        if condition["type"] in ("Failed", "FailureTarget"):
            raise JobFailed(obj, f"{condition.get('reason', '')} {condition.get('message', '')}")
    return False, f"{obj.get('status', {}).get('active', 0)} active"


def pvc_bound(obj: dict) -> tuple[bool, str]:
    phase = obj.get("status", {}).get("phase", "Pending")
    return phase == "Bound", phase.lower()


def namespace_active(obj: dict) -> tuple[bool, str]:
    phase = obj.get("status", {}).get("phase", "Active")
    return phase == "Active", phase.lower()


PREDICATES: dict[str, Predicate] = {
    "StatefulSet": statefulset_ready,
    "Deployment": deployment_ready,
    "Job": job_complete,
    "PersistentVolumeClaim": pvc_bound,
    "Namespace": namespace_active,
}


def endpoints_ready(slices: list[dict]) -> tuple[bool, str]:
    """A Service is ready when one of its EndpointSlices has a ready endpoint."""
    ready = sum(
        1
        for piece in slices
        for endpoint in piece.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready", True)
    )
    return ready > 0, f"{ready} ready endpoint{'s' if ready != 1 else ''}"


def readiness(cluster: Cluster, obj: dict, live: dict | None = None) -> tuple[bool, str]:
    """Ready or not, and why, for one object; `live` saves a read when the caller has it."""
    live = live if live is not None else cluster.get(obj)
    if live is None:
        return False, "not found"
    if obj["kind"] == "Service":
        if not live.get("spec", {}).get("selector"):
            return True, "no selector"
        return endpoints_ready(cluster.endpoint_slices(live["metadata"]["namespace"], live["metadata"]["name"]))
    predicate = PREDICATES.get(obj["kind"])
    return predicate(live) if predicate else (True, "exists")


def wait_ready(cluster: Cluster, objects: list[dict], timeout: int,
               on_poll: Callable[[dict, str], None] | None = None, pull_timeout: int = 1200,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Poll until every object is ready; on timeout raise with pods, containers and events.

    Time while a pod's image is being pulled pauses `timeout` and counts against `pull_timeout`
    (the inventory's `timeouts.pull`); a pull error ends the wait at once. `clock` and `sleep` are the loop's time, replaceable in tests.
    """
    pending = list(objects)
    last: dict[str, str] = {}
    budget = Clock(timeout, pull_timeout, clock)
    started = clock()
    puller: dict[str, dict] = {}  # image -> the object whose pod pulls it

    def poll() -> None:
        pulls: dict[str, list[str]] = {}
        unscheduled: dict[str, list[str]] = {}
        look = budget.elapsed() >= PULLS_AFTER
        for obj in list(pending):
            ready, why = readiness(cluster, obj)
            last[ref(obj)] = why
            if ready:
                pending.remove(obj)
                continue
            workload = obj["kind"] in WORKLOADS
            unscheduled[ref(obj)] = []
            pulls[ref(obj)] = images_pulling(cluster, obj, pod_selector(obj), unscheduled[ref(obj)]) if look and workload else []
            puller.update(dict.fromkeys(pulls[ref(obj)], obj))
        budget.tick(image for images in pulls.values() for image in images)
        for obj in pending:
            images, pending_pods = pulls[ref(obj)], unscheduled[ref(obj)]
            why = f"pulling {images[0]}, {duration(budget.pulls[images[0]])}" if images else last[ref(obj)]
            if pending_pods:
                why += f"; warning: {pending_pods[0]} (a failure only if it lasts the {timeout} s of timeouts.ready)"
            if on_poll:
                on_poll(obj, why)
        if pending:
            raise _NotReady()

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_NotReady),
        stop=budget.spent,
        wait=lambda state: poll_interval(state.attempt_number, clock() - started),
        sleep=sleep,
        reraise=True,
    )
    try:
        retrying(poll)
    except JobFailed as exc:
        raise DatameshError(f"{exc}; {explain(cluster, exc.job)}") from exc
    except ImagePullFailed as exc:
        raise DatameshError(str(exc)) from exc
    except _NotReady as exc:
        image, seconds = budget.longest_pull()
        if seconds >= budget.pull:
            obj = puller[image]
            raise DatameshError(
                f"{ref(obj)} was still pulling image {image} after {budget.pull} s; {explain(cluster, obj)}; "
                "check your network (the node goes on pulling, so a later `invoke up` may find the image there), "
                "or raise timeouts.pull in the inventory."
            ) from exc
        obj = next((o for o in pending if o["kind"] != "Service"), pending[0])
        pulled = f" plus {budget.paused:.0f} s of image pulls" if budget.paused >= 1 else ""
        raise DatameshError(
            f"{ref(obj)} was not ready after {timeout} s ({last.get(ref(obj), 'unknown')}){pulled}; "
            f"{explain(cluster, obj)}; fix the cause and re-run, or raise timeouts.ready in the inventory."
        ) from exc


class _NotReady(Exception):
    pass


def poll_interval(attempt: int, elapsed: float) -> float:
    """Polls a quarter, half, then one second apart while things usually get ready (the first 30 s:
    a pod on a local cluster is ready in seconds, and each second slept is a second added to `up`),
    then every 3 s through long waits such as image pulls."""
    return min(0.25 * 2 ** min(attempt - 1, 4), 1.0 if elapsed < 30 else 3.0)


def wait_gone(cluster: Cluster, objects: list[dict], timeout: int) -> None:
    """Poll until every object is gone, finalizers included; on timeout name what holds it."""
    pending = list(objects)

    def poll() -> None:
        for obj in list(pending):
            live = cluster.get(obj)
            if live is None or live["metadata"].get("uid") != obj["metadata"].get("uid"):
                pending.remove(obj)
        if pending:
            raise _StillThere()

    try:
        tenacity.Retrying(retry=tenacity.retry_if_exception_type(_StillThere), stop=tenacity.stop_after_delay(timeout),
                          wait=lambda state: poll_interval(state.attempt_number, state.seconds_since_start or 0),
                          reraise=True)(poll)
    except _StillThere:
        live = cluster.get(pending[0]) or {}
        finalizers = ", ".join(live.get("metadata", {}).get("finalizers", [])) or "none"
        raise DatameshError(
            f"{ref(pending[0])} was still there {timeout} s after its deletion (finalizers: {finalizers}); "
            "check what holds it and re-run `invoke down`."
        ) from None


class _StillThere(Exception):
    pass


def poll(check: Callable[[], tuple[bool, str]], timeout: float, interval: float = 2) -> tuple[bool, str]:
    """Call `check` every `interval` seconds until it answers (True, ...) or `timeout` passes;
    returns its last answer, so the caller can say what it saw last."""
    last: list[tuple[bool, str]] = [(False, "")]

    def attempt() -> None:
        last[0] = check()
        if not last[0][0]:
            raise _NotReady()

    try:
        tenacity.Retrying(retry=tenacity.retry_if_exception_type(_NotReady), stop=tenacity.stop_after_delay(timeout),
                          wait=tenacity.wait_fixed(interval), reraise=True)(attempt)
    except _NotReady:
        pass
    return last[0]


def pause(seconds: float) -> None:
    """Sleep between rounds of a loop that is not a wait (`status --watch`); Ctrl-C ends it."""
    time.sleep(seconds)
