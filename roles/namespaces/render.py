"""The platform's namespaces, labelled with the domain each one belongs to and the Pod Security
level the API server enforces on them (`security.pod_security`, restricted by default).

Every pod of the platform meets `restricted`: each runs as a non-root user with all capabilities
dropped, no privilege escalation and the RuntimeDefault seccomp profile
(`manifests.pod_security`/`container_security`; KubeSpawner's servers get the same in
files/jupyterhub/jupyterhub_config.py), and mounts only ConfigMaps, Secrets, emptyDirs and
claims. No image needs `baseline`; an inventory may still choose it, and `invoke status` shows it.
Warnings and audit stay at `restricted`, so a weaker enforce level still names what would break.
"""

from datamesh.manifests import metadata
from datamesh.netpol import network_policies

DEPENDS_ON: list[str] = []
DOMAINS = {"jupyterhub": "platform", "platform": "platform", "sales": "sales", "marketing": "marketing"}
PSA = "pod-security.kubernetes.io"


def render(vars: dict) -> list[dict]:
    level = vars["security"]["pod_security"]
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": metadata("namespaces", vars["namespaces"][key],
                                 labels={"datamesh.io/domain": domain, **pod_security_labels(level)}),
        }
        for key, domain in DOMAINS.items()
    ] + network_policies("namespaces", vars)


def pod_security_labels(level: str) -> dict[str, str]:
    """Enforce `level`; warn and audit at restricted, each at the cluster's own (latest) policy version."""
    labels = {f"{PSA}/enforce": level, f"{PSA}/warn": "restricted", f"{PSA}/audit": "restricted"}
    return {**labels, **{f"{PSA}/{mode}-version": "latest" for mode in ("enforce", "warn", "audit")}}
