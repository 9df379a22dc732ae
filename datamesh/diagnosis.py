"""Why an object is not ready, in one clause: its pods' phase and container states, and the last events.

`wait` appends this to every error it raises, because "timed out" alone sends people to kubectl
for an hour. The reads go through `Cluster`; the rest is formatting.
"""

from __future__ import annotations

from datamesh.cluster import Cluster

WORKLOADS = ("StatefulSet", "Deployment", "Job", "DaemonSet", "ReplicaSet")  # kinds that make pods from a template


def explain(cluster: Cluster, obj: dict) -> str:
    """Pods' phase, container states and the last events of a workload, in one clause."""
    namespace = obj["metadata"].get("namespace")
    selector = pod_selector(obj)
    if not namespace or selector is None:
        events = cluster.events(namespace, obj["metadata"]["name"]) if namespace else []
        return events_text(events) or "no events"
    pods = cluster.pods(namespace, selector)
    if not pods:
        events = cluster.events(namespace, obj["metadata"]["name"])
        return f"no pods were created; {events_text(events) or 'no events'}"
    parts = []
    for pod in pods[:3]:
        name = pod["metadata"]["name"]
        phase = pod.get("status", {}).get("phase", "Unknown")
        states = container_states(pod)
        events = events_text(cluster.events(namespace, name))
        parts.append(f"pod {name} is {phase}" + (f" ({states})" if states else "") + (f", events: {events}" if events else ""))
    return "; ".join(parts)


def pod_selector(obj: dict) -> dict | None:
    """The labels that pick a workload's (or a Service's) pods; None for other kinds."""
    if obj["kind"] in WORKLOADS:
        return obj.get("spec", {}).get("selector", {}).get("matchLabels") or obj["spec"]["template"]["metadata"].get("labels")
    if obj["kind"] == "Service":
        return obj.get("spec", {}).get("selector")
    return None


def container_states(pod: dict) -> str:
    """Each container's state and reason; a terminated one's last line of its termination message,
    which is its log's last line where the container falls back to its logs (a Job's script saying why)."""
    out = []
    for status in pod.get("status", {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        for kind, detail in state.items():
            reason = detail.get("reason", "")
            said = (detail.get("message") or "").strip().splitlines() if kind == "terminated" else []
            out.append(f"{status['name']} {kind}" + (f" {reason}" if reason else "") + (f": {said[-1]}" if said else ""))
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            out.append(f"unschedulable: {condition.get('message', condition.get('reason', ''))}")
    return ", ".join(out)


def events_text(events: list[dict], last: int = 3) -> str:
    return " | ".join(
        f"{e.get('reason', '')}: {(e.get('message') or '').strip()}" for e in events[-last:]
    )

