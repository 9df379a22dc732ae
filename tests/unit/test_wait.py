"""Readiness predicates and the wait, on objects recorded from kube-apiserver and KWOK (fixtures/record*.py)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest

from datamesh import pulls, wait
from datamesh.errors import DatameshError
from datamesh.report import Reporter
from tests.unit.helpers import rendered_for

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_statefulset_ready_once_its_pod_is_ready():
    assert wait.statefulset_ready(recorded("statefulset-postgres-sales.json")) == (True, "1/1 ready")


def test_statefulset_just_applied_is_not_ready():
    ready, why = wait.statefulset_ready(recorded("statefulset-just-applied.json"))
    assert not ready and why in ("controller has not seen the latest spec", "0/1 ready, 0/1 updated")


def test_statefulset_with_a_newer_generation_than_observed_is_not_ready():
    obj = recorded("statefulset-postgres-sales.json")
    obj["metadata"]["generation"] += 1
    assert wait.statefulset_ready(obj) == (False, "controller has not seen the latest spec")


def test_statefulset_mid_rollout_is_not_ready():
    obj = recorded("statefulset-postgres-sales.json")
    obj["status"]["updateRevision"] = obj["status"]["currentRevision"] + "-next"
    assert wait.statefulset_ready(obj) == (False, "rolling update in progress")


def test_deployment_ready_and_not_ready():
    assert wait.deployment_ready(recorded("deployment-ready.json"))[0]
    stale = recorded("deployment-ready.json")
    stale["metadata"]["generation"] += 1
    assert wait.deployment_ready(stale) == (False, "controller has not seen the latest spec")
    assert not wait.deployment_ready(recorded("deployment-just-applied.json"))[0]


def test_deployment_with_surplus_old_replicas_is_not_ready():
    obj = recorded("deployment-ready.json")
    obj["status"]["replicas"] = obj["spec"]["replicas"] + 1
    assert not wait.deployment_ready(obj)[0]


def test_job_complete_and_running():
    assert wait.job_complete(recorded("job-complete.json")) == (True, "complete")
    assert not wait.job_complete(recorded("job-just-applied.json"))[0]


def test_failed_job_stops_the_wait_at_once():
    job = recorded("job-complete.json")
    job["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                    "message": "Job has reached the specified backoff limit"}]
    with pytest.raises(wait.JobFailed, match="BackoffLimitExceeded") as caught:
        wait.job_complete(job)
    assert caught.value.job is job  # what the wait explains, without parsing the message


def test_a_failed_job_is_explained_from_its_own_pods_whatever_else_waits():
    failed = recorded("job-complete.json")
    failed["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    asked = []

    class Cluster:
        def get(self, obj):
            return failed if obj["kind"] == "Job" else recorded("deployment-ready.json")

        def pods(self, namespace, selector):
            asked.append(selector)
            return []

        def events(self, namespace, name):
            return []

    deployment, job = (recorded(name) for name in ("deployment-ready.json", "job-just-applied.json"))
    with pytest.raises(DatameshError) as caught:
        wait.wait_ready(Cluster(), [deployment, job], 60, sleep=lambda seconds: None)
    assert str(caught.value) == "Job data-platform/record-job failed: BackoffLimitExceeded; no pods were created; no events"
    assert asked == [failed["spec"]["selector"]["matchLabels"]]


def test_a_failed_job_says_why_in_its_scripts_own_last_line():
    """A readonly Job's container falls back to its log for its termination message: the wait shows its last line."""
    failed = recorded("job-complete.json")
    failed["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    said = "psql: error: no response\nPostgreSQL sales_db at postgres-sales:5432 did not accept connections within 180 s\n"
    pod = {"metadata": {"name": "postgres-sales-readonly-1a2b3c4d-x7k2p"},
           "status": {"phase": "Failed", "containerStatuses": [
               {"name": "readonly", "state": {"terminated": {"reason": "Error", "exitCode": 1, "message": said}}}]}}

    class Cluster:
        def get(self, obj):
            return failed

        def pods(self, namespace, selector):
            return [pod]

        def events(self, namespace, name):
            return []

    with pytest.raises(DatameshError) as caught:
        wait.wait_ready(Cluster(), [recorded("job-just-applied.json")], 60, sleep=lambda seconds: None)
    assert str(caught.value).endswith(
        "pod postgres-sales-readonly-1a2b3c4d-x7k2p is Failed (readonly terminated Error: PostgreSQL sales_db at "
        "postgres-sales:5432 did not accept connections within 180 s)")


def test_pvc_bound_and_pending():
    assert wait.pvc_bound(recorded("pvc-bound.json")) == (True, "bound")
    pending = copy.deepcopy(recorded("pvc-bound.json"))
    pending["status"] = {"phase": "Pending"}
    assert wait.pvc_bound(pending) == (False, "pending")


def test_service_ready_with_a_ready_endpoint():
    assert wait.endpoints_ready([recorded("endpointslice-postgres-sales.json")]) == (True, "1 ready endpoint")
    assert wait.endpoints_ready([]) == (False, "0 ready endpoints")
    unready = recorded("endpointslice-postgres-sales.json")
    for endpoint in unready["endpoints"]:
        endpoint["conditions"]["ready"] = False
    assert wait.endpoints_ready([unready]) == (False, "0 ready endpoints")


def test_every_predicate_kind_is_in_the_table():
    assert set(wait.PREDICATES) == {"StatefulSet", "Deployment", "Job", "PersistentVolumeClaim", "Namespace"}


# -- image pulls: a budget of their own (pods and events from fixtures/record_pulls.py) -------

TRINO, MISSING = "trinodb/trino:476", "trinodb/trino:4760"


def trino_deployment() -> dict:
    return next(o for o in rendered_for("docker-desktop")["trino"] if o["kind"] == "Deployment")


class Clock:
    """Fake time for the wait: its sleeps move the clock, nothing really waits."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Kubelet:
    """The reads the wait makes, answered from recorded objects: until `pulled_at` seconds of fake
    time the Deployment is unready and its pod in the first state; then it is ready (None: never)."""

    def __init__(self, clock: Clock, pod: str, events: str, pulled_at: float | None = None,
                 after: tuple[str, str] = ("pod-trino-started.json", "events-trino-pulled.json")):
        self.clock, self.pulled_at = clock, pulled_at
        self.before, self.after = (recorded(pod), recorded(events)), (recorded(after[0]), recorded(after[1]))
        self.reads: dict[str, int] = {}

    def _done(self) -> bool:
        return self.pulled_at is not None and self.clock.now >= self.pulled_at

    def _read(self, what: str) -> None:
        self.reads[what] = self.reads.get(what, 0) + 1

    def get(self, obj: dict) -> dict:
        self._read("get")
        live = recorded("deployment-ready.json")
        if not self._done():  # rolled out, its one pod not available yet
            live["status"].update(availableReplicas=0, readyReplicas=0, unavailableReplicas=1)
        return live

    def pods(self, namespace: str, selector: dict) -> list[dict]:
        self._read("pods")
        return [(self.after if self._done() else self.before)[0]]

    def events(self, namespace: str, name: str) -> list[dict]:
        self._read("events")
        return (self.after if self._done() else self.before)[1]


def lines_of(reporter_stream: io.StringIO) -> list[str]:
    return [line.split(" at ")[0].strip() for line in reporter_stream.getvalue().splitlines()]


def test_a_pod_is_pulling_while_its_container_is_created_and_the_last_pull_event_is_pulling():
    pod, started = recorded("pod-trino-pulling.json"), recorded("pod-trino-started.json")
    assert pulls.pulling(pod, recorded("events-trino-pulling.json")) == [TRINO]
    assert pulls.pulling(pod, recorded("events-trino-pulled.json")) == []
    assert pulls.pulling(started, recorded("events-trino-pulling.json")) == []
    again = copy.deepcopy(recorded("events-trino-pulling.json")[-1])
    again["lastTimestamp"], again["count"] = "2999-01-01T00:00:00Z", 2  # pulled, then pulled again after a restart
    assert pulls.pulling(pod, recorded("events-trino-pulled.json") + [again]) == [TRINO]


def test_events_of_an_earlier_pod_of_the_same_name_are_not_this_pods():
    pod = recorded("pod-trino-pulling.json")
    earlier = copy.deepcopy(recorded("events-trino-pulling.json"))
    for event in earlier:
        event["involvedObject"]["uid"] = "0" * 8 + event["involvedObject"]["uid"][8:]
    assert pulls.pulling(pod, earlier) == []


def test_a_pull_error_is_named_in_the_registrys_words():
    events = recorded("events-trino-pull-failed.json")
    for name, reason in (("pod-trino-err-image-pull.json", "ErrImagePull"), ("pod-trino-image-pull-backoff.json", "ImagePullBackOff")):
        image, why = pulls.pull_failure(recorded(name), events)
        assert image == MISSING
        assert why == (f'{reason}: rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/{MISSING}": '
                       f'failed to resolve reference "docker.io/{MISSING}": docker.io/{MISSING}: not found')
    assert pulls.pull_failure(recorded("pod-trino-pulling.json"), recorded("events-trino-pulling.json")) is None


def test_a_pull_in_progress_does_not_use_the_ready_budget():
    """A 500 s pull under a 60 s readiness budget: the wait goes on, and says what it waits for."""
    clock, stream = Clock(), io.StringIO()
    cluster = Kubelet(clock, "pod-trino-pulling.json", "events-trino-pulling.json", pulled_at=500)
    wait.wait_ready(cluster, [trino_deployment()], 60, on_poll=Reporter(stream).waiting, clock=clock, sleep=clock.sleep)
    assert clock.now >= 500
    lines = lines_of(stream)
    key = "waiting: Deployment data-platform/trino-coordinator"
    assert lines[0] == f"{key} (0/1 available, 1/1 updated)"
    assert f"{key} (pulling {TRINO}, 0s)" in lines and f"{key} (pulling {TRINO}, 8m00s)" in lines
    assert f"{key} (pulling {TRINO}, 2m30s)" in lines
    assert len(lines) == len(set(lines)) <= 2 + 500 // pulls.PROGRESS_STEP  # a line per change, not one per poll


def test_a_pull_longer_than_timeouts_pull_fails_naming_the_image():
    clock = Clock()
    cluster = Kubelet(clock, "pod-trino-pulling.json", "events-trino-pulling.json", pulled_at=None)
    with pytest.raises(DatameshError) as caught:
        wait.wait_ready(cluster, [trino_deployment()], 60, pull_timeout=600, clock=clock, sleep=clock.sleep)
    message = str(caught.value)
    pod = recorded("pod-trino-pulling.json")["metadata"]["name"]
    assert message.startswith(f"Deployment data-platform/trino-coordinator was still pulling image {TRINO} after 600 s; ")
    assert f"pod {pod} is Pending (trino waiting ContainerCreating), events: " in message
    assert f'Pulling: Pulling image "{TRINO}"' in message
    assert message.endswith("or raise timeouts.pull in the inventory.")
    assert 600 <= clock.now < 700  # the pull budget ended it, not the 60 s readiness budget


def test_the_pull_budget_is_the_inventorys(tmp_path):
    from datamesh import inventory

    assert inventory.load("docker-desktop")["timeouts"]["pull"] == 1200
    clock = Clock()
    cluster = Kubelet(clock, "pod-trino-pulling.json", "events-trino-pulling.json", pulled_at=None)
    with pytest.raises(DatameshError, match=f"still pulling image {TRINO} after 1200 s"):
        wait.wait_ready(cluster, [trino_deployment()], 60, pull_timeout=1200, clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize("pod, reason", [("pod-trino-err-image-pull.json", "ErrImagePull"),
                                         ("pod-trino-image-pull-backoff.json", "ImagePullBackOff")])
def test_an_image_that_cannot_be_pulled_ends_the_wait_at_once(pod, reason):
    clock = Clock()
    cluster = Kubelet(clock, pod, "events-trino-pull-failed.json", pulled_at=None)
    with pytest.raises(DatameshError) as caught:
        wait.wait_ready(cluster, [trino_deployment()], 300, clock=clock, sleep=clock.sleep)
    name = recorded(pod)["metadata"]["name"]
    assert str(caught.value) == (
        f"the trino component's Deployment data-platform/trino-coordinator cannot pull image {MISSING} (pod {name}, "
        f'{reason}: rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/{MISSING}": '
        f'failed to resolve reference "docker.io/{MISSING}": docker.io/{MISSING}: not found); '
        "check the image name and your network, or pin another tag in the inventory's images."
    )
    assert clock.now < 2 * pulls.PULLS_AFTER  # the first look at the pods ends it


def test_a_quick_wait_reads_nothing_more_than_before():
    clock = Clock()
    cluster = Kubelet(clock, "pod-trino-pulling.json", "events-trino-pulling.json", pulled_at=3)
    wait.wait_ready(cluster, [trino_deployment()], 60, clock=clock, sleep=clock.sleep)
    assert set(cluster.reads) == {"get"}


def test_without_a_pull_the_ready_budget_and_its_error_are_unchanged():
    clock = Clock()
    cluster = Kubelet(clock, "pod-trino-started.json", "events-trino-pulled.json", pulled_at=None)
    with pytest.raises(DatameshError) as caught:
        wait.wait_ready(cluster, [trino_deployment()], 60, clock=clock, sleep=clock.sleep)
    pod = recorded("pod-trino-started.json")["metadata"]["name"]
    assert str(caught.value) == (
        "Deployment data-platform/trino-coordinator was not ready after 60 s (0/1 available, 1/1 updated); "
        f"pod {pod} is Running (trino running), events: Pulled: Successfully pulled image \"{TRINO}\" in 2m10.214s "
        "(2m10.214s including waiting). Image size: 498731265 bytes. | Created: Container created | Started: Container started; "
        "fix the cause and re-run, or raise timeouts.ready in the inventory."
    )
    assert 60 <= clock.now < 64
    assert cluster.reads["events"] == 1  # only for the error: a running container waits for no image


def test_after_a_pull_the_ready_budget_goes_on_where_it_stopped():
    """Unready before and after a 200 s pull: 60 s of readiness in all, the pull on top, and the
    error says both."""
    class NeverReady(Kubelet):
        def get(self, obj: dict) -> dict:
            live = recorded("deployment-ready.json")
            live["status"].update(availableReplicas=0, readyReplicas=0, unavailableReplicas=1)
            return live

    clock = Clock()
    cluster = NeverReady(clock, "pod-trino-pulling.json", "events-trino-pulling.json", pulled_at=200)
    with pytest.raises(DatameshError) as caught:
        wait.wait_ready(cluster, [trino_deployment()], 60, clock=clock, sleep=clock.sleep)
    message = str(caught.value)
    pulled = int(message.split(" plus ")[1].split(" s of image pulls")[0])
    assert message.startswith("Deployment data-platform/trino-coordinator was not ready after 60 s "
                              f"(0/1 available, 1/1 updated) plus {pulled} s of image pulls; pod ")
    assert "is Running (trino running), events: Pulled: " in message
    assert 190 <= pulled <= 200 and 60 + pulled <= clock.now < 60 + pulled + 4


def test_poll_returns_the_first_yes_or_the_last_answer_at_the_timeout():
    answers = iter([(False, "one"), (False, "two"), (True, "three")])
    assert wait.poll(lambda: next(answers), timeout=5, interval=0.01) == (True, "three")
    assert wait.poll(lambda: (False, "never"), timeout=0.05, interval=0.01) == (False, "never")
