"""Image pulls as the kubelet reports them, and the clock that keeps them out of the readiness budget.

While a pod's image is being pulled, the readiness budget (`timeouts.ready`) is paused and the
time counts against the pull's own (`timeouts.pull`), so a first run on a slow network is not a
readiness failure. The kubelet shows a pull only in events: the container waits with its default
reason (ContainerCreating, or PodInitializing in a pod with init containers) and the pod has a
`Pulling` event for the image with no `Pulled` or failed pull after it. A container waiting with a
pull error (ErrImagePull, ImagePullBackOff, ...) cannot get better by waiting.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

from datamesh.cluster import Cluster
from datamesh.kube import ref
from datamesh.manifests import COMPONENT, label

# Reasons and messages as the kubelet writes them (k8s.io/kubernetes pkg/kubelet: kubelet_pods.go,
# events/event.go, images/image_manager.go and types.go; k8s.io/cri-api pkg/errors).
CREATING = ("ContainerCreating", "PodInitializing")
PULLING, PULLED, FAILED = "Pulling", "Pulled", "Failed"  # 'Pulling image "X"'; 'Successfully pulled image "X" in ...'
FAILED_PULL = "Failed to pull image"                    # a Failed event's message: 'Failed to pull image "X": <error>'
CANNOT_PULL = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "ImageInspectError",
               "RegistryUnavailable", "SignatureValidationFailed")
QUOTED_IMAGE = re.compile(r'image "([^"]+)"', re.IGNORECASE)
PROGRESS_STEP = 30  # seconds: a pull's progress line changes (and is printed again) this often
PULLS_AFTER = 5     # seconds of waiting before pods are read for pulls: a quick wait costs no extra request


class ImagePullFailed(Exception):
    """A container cannot get its image: waiting longer cannot help."""


class Clock:
    """The wait's two budgets: time goes to `ready` unless a pull was in progress at the last
    poll; then it goes to each image being pulled, and a pull that ends starts from 0 next time."""

    def __init__(self, ready: float, pull: float, now: Callable[[], float]):
        self.ready, self.pull, self.now = ready, pull, now
        self.start = self.mark = now()
        self.ready_spent = self.paused = 0.0
        self.pulls: dict[str, float] = {}  # image -> seconds this pull has been seen in progress

    def tick(self, pulling: Iterable[str]) -> None:
        now = self.now()
        step, self.mark = now - self.mark, now
        if self.pulls:
            self.paused += step
            for image in self.pulls:
                self.pulls[image] += step
        else:
            self.ready_spent += step
        self.pulls = {image: self.pulls.get(image, 0.0) for image in pulling}

    def elapsed(self) -> float:
        return self.now() - self.start

    def longest_pull(self) -> tuple[str, float]:
        return max(self.pulls.items(), key=lambda item: item[1], default=("", 0.0))

    def spent(self, _retry_state: object = None) -> bool:
        """tenacity's stop: either budget is used up."""
        return self.ready_spent >= self.ready or self.longest_pull()[1] >= self.pull


def images_pulling(cluster: Cluster, obj: dict, selector: dict | None, unscheduled: list[str] | None = None) -> list[str]:
    """Images the pods of a workload (`selector` picks them) are being pulled for; raises
    ImagePullFailed when one cannot be. The scheduler's reason for each pod it has not placed yet
    is appended to `unscheduled`, for progress to show as a warning while there is time left."""
    namespace = obj["metadata"].get("namespace")
    if not namespace or not selector:
        return []
    images: list[str] = []
    for pod in cluster.pods(namespace, selector):
        for condition in pod.get("status", {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False" and unscheduled is not None:
                unscheduled.append(f"pod {pod['metadata']['name']} is Pending: {condition.get('message') or condition.get('reason')}")
        reasons = {_waiting(status).get("reason") for status in _statuses(pod)}
        if not reasons & {*CREATING, *CANNOT_PULL}:
            continue  # no container waits for an image: no events to read
        events = cluster.events(namespace, pod["metadata"]["name"])
        failure = pull_failure(pod, events)
        if failure:
            component = label(obj, COMPONENT)
            raise ImagePullFailed(
                (f"the {component} component's " if component else "")
                + f"{ref(obj)} cannot pull image {failure[0]} (pod {pod['metadata']['name']}, {failure[1]}); "
                "check the image name and your network, or pin another tag in the inventory's images."
            )
        images += [image for image in pulling(pod, events) if image not in images]
    return images


def pulling(pod: dict, events: list[dict]) -> list[str]:
    """Images being pulled for a pod: a container waits as ContainerCreating or PodInitializing,
    and the last pull event for its image (events oldest first, as Cluster.events sorts them)
    is `Pulling`, with no `Pulled` or failed pull after it."""
    waiting = {status.get("image") for status in _statuses(pod) if _waiting(status).get("reason") in CREATING}
    last: dict[str, str] = {}
    for event in _own(pod, events):
        reason, message = event.get("reason"), event.get("message") or ""
        found = QUOTED_IMAGE.search(message)
        if found and (reason in (PULLING, PULLED) or (reason == FAILED and message.startswith(FAILED_PULL))):
            last[found.group(1)] = reason
    return [image for image, reason in last.items() if reason == PULLING and image in waiting]


def pull_failure(pod: dict, events: list[dict]) -> tuple[str, str] | None:
    """(image, why) for a container that cannot get its image; why is in the registry's words
    when a `Failed to pull image` event has them, else the container's waiting message."""
    for status in _statuses(pod):
        waiting = _waiting(status)
        if waiting.get("reason") not in CANNOT_PULL:
            continue
        image = status.get("image", "")
        prefix = f'{FAILED_PULL} "{image}": '
        errors = [e["message"][len(prefix):] for e in _own(pod, events)
                  if e.get("reason") == FAILED and (e.get("message") or "").startswith(prefix)]
        detail = errors[-1] if errors else waiting.get("message", "")
        return image, " ".join(f"{waiting['reason']}: {detail}".split()) if detail else waiting["reason"]
    return None


def _statuses(pod: dict) -> list[dict]:
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def _waiting(status: dict) -> dict:
    return (status.get("state") or {}).get("waiting") or {}


def _own(pod: dict, events: list[dict]) -> list[dict]:
    """The pod's events, not those of an earlier pod of the same name (a StatefulSet's, say)."""
    uid = pod["metadata"].get("uid")
    return [e for e in events if not uid or (e.get("involvedObject") or {}).get("uid") in (None, uid)]


def duration(seconds: float) -> str:
    """`2m30s`, rounded down to PROGRESS_STEP so that a progress line changes only that often."""
    seconds = int(seconds) // PROGRESS_STEP * PROGRESS_STEP
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
