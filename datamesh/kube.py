"""The Kubernetes API's vocabulary, without I/O: where a kind lives, how messages name an object,
the API's error answers and how a failed connection reads.

`datamesh/cluster.py` sends every request; this module only describes what it sends and gets back.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlparse


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API, as discovery reported it."""

    group_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = group_version_path(self.group_version)
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        return f"{base}/{quote(name, safe='')}" if name else base


# apimachinery's grammar (resource.Quantity): a signed decimal number, then a binary (Ki..Ei) or
# decimal (n, u, m, k, M..E) suffix or a decimal exponent
QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?")
SUFFIXES = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6,
            "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
            "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity (`512Mi`, `0.5`, `250m`, `1e3`) as a number; ValueError for anything
    the API server would refuse. The official client's parse_quantity also takes `NaN` and `1.5.`,
    and importing it imports the whole client."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    found = QUANTITY.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (like 512Mi, 2Gi, 500m or 1.5)")
    number, suffix = Decimal(found.group(1)), found.group(2) or ""
    if suffix[:1] in ("e", "E") and suffix not in SUFFIXES:  # 1E is exa (10^18), 1E3 an exponent
        return number * Decimal(10) ** int(suffix[1:])
    return number * SUFFIXES[suffix] if suffix else number


def group_version_path(api_version: str) -> str:
    """`/api/v1` for the core group, `/apis/GROUP/VERSION` for the others."""
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"


class Discovery:
    """The kinds the API serves, learned one group-version at a time and kept: one request each."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], Resource] = {}
        self.discovered: set[str] = set()

    def add(self, api_version: str, answer: dict) -> None:
        """Keep a discovery answer (`{"resources": [...]}`); subresources such as pods/log are skipped."""
        self.discovered.add(api_version)
        for item in answer.get("resources", []):
            if "/" not in item["name"]:
                self.resources[(api_version, item["kind"])] = Resource(api_version, item["kind"], item["name"], item["namespaced"])


class ApiError(Exception):
    """A non-transient error answer from the API server."""

    def __init__(self, status: int, reason: str, body: dict | None):
        self.status = status
        self.reason = reason
        self.body = body or {}
        super().__init__(self.body.get("message") or f"{status} {reason}")


class Transient(Exception):
    """A failure worth retrying: the server or the connection may recover."""


def answer_of(body: bytes | str | None) -> dict:
    """An error answer's body as the API's Status dict (text that is not JSON becomes its message)."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    try:
        answer = json.loads(text) if text else {}
    except ValueError:
        answer = {"message": text[:200]}
    return answer if isinstance(answer, dict) else {"message": text[:200]}


def ref(obj: dict) -> str:
    """`Kind namespace/name`, the way every message names an object."""
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def cache_home() -> Path:
    """Where datamesh keeps what it can make again (discovery answers, the testbeds' builds), outside
    the work tree: $DATAMESH_CACHE, else $XDG_CACHE_HOME/datamesh, else ~/.cache/datamesh."""
    if os.environ.get("DATAMESH_CACHE"):
        return Path(os.environ["DATAMESH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "datamesh"


def keep(path: Path, data: dict) -> None:
    """Write a cache file whole or not at all (a rename), and never fail the run for it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(data))
        partial.replace(path)
    except OSError:
        pass  # a read-only home only costs the next run what the file would have saved


def discovery_file(server: str, version: str, api_version: str) -> Path:
    """One group-version's discovery answer for one API server at one version: kubectl keeps these
    per server too (~/.kube/cache/discovery); a new release of the server starts afresh."""
    where = urlparse(server)
    host = (where.netloc or where.path or "server").replace(":", "_").replace("/", "_")
    return cache_home() / "discovery" / host / version.replace("/", "_") / f"{api_version.replace('/', '_')}.json"


def kubeconfig_path(configured: str | None) -> Path:
    """The inventory's cluster.kubeconfig, else the first file of KUBECONFIG, else ~/.kube/config."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path("~/.kube/config").expanduser()


def reason(exc: BaseException) -> str:
    """A failed connection in a few words a user recognises."""
    text = str(exc)
    for needle, words in (
        ("Connection refused", "connection refused"),
        ("timed out", "no answer in time"),
        ("Name or service not known", "the server name does not resolve"),
        ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed"),
    ):
        if needle in text:
            return words
    return type(exc).__name__


# -- port-forward: which pod and which port, as kubectl port-forward svc/NAME chooses ---------------


def ready_since(pod: dict) -> str | None:
    """When a running, undeleted pod became Ready (its condition's timestamp), else None."""
    if pod["metadata"].get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
        return None
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return condition.get("lastTransitionTime") or ""
    return None


def pick_pod(pods: list[dict]) -> dict | None:
    """The Ready pod kubectl would forward to: ready the longest, then fewest restarts, then oldest."""
    def restarts(pod: dict) -> int:
        return sum(s.get("restartCount", 0) for s in pod.get("status", {}).get("containerStatuses") or [])

    ready = [pod for pod in pods if ready_since(pod) is not None]
    ready.sort(key=lambda p: (ready_since(p), restarts(p), p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
    return ready[0] if ready else None


def target_port(service: dict, port_name: str, pod: dict) -> int:
    """The pod's port behind the Service port named `port_name` (a named targetPort looked up in the
    pod's containers, as kube-proxy and kubectl do); ValueError naming what is missing."""
    name = f"{service['metadata']['namespace']}/{service['metadata']['name']}"
    port = next((p for p in service["spec"].get("ports") or [] if p.get("name", "") == port_name), None)
    if port is None:
        raise ValueError(f"Service {name} has no port named {port_name!r}")
    target = port.get("targetPort", port["port"])
    if isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)
    for container in pod["spec"].get("containers") or []:
        for container_port in container.get("ports") or []:
            if container_port.get("name") == target:
                return container_port["containerPort"]
    raise ValueError(f"Service {name} targets port {target!r}, which pod {pod['metadata']['name']} does not name")


LOOP_RESTARTS = 3          # restarts that, with one in the last LOOP_WINDOW seconds, make a loop
LOOP_WINDOW = 600


def restart_loop(pod: dict, now: float) -> str | None:
    """Why a pod's container is restarting in a loop (CrashLoopBackOff, or LOOP_RESTARTS restarts
    with the last one under LOOP_WINDOW seconds ago), else None: old restarts alone are history."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            return f"container {status['name']} is in CrashLoopBackOff ({status.get('restartCount', 0)} restarts)"
        finished = ((status.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if status.get("restartCount", 0) >= LOOP_RESTARTS and finished and now - timestamp(finished) < LOOP_WINDOW:
            return (f"container {status['name']} restarted {status['restartCount']} times, the last "
                    f"{now - timestamp(finished):.0f} s ago")
    return None


def timestamp(text: str) -> float:
    """An API timestamp (RFC 3339, UTC) as seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
