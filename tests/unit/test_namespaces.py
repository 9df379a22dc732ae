"""The namespaces role: the platform's namespaces, labelled with their domain."""

from __future__ import annotations

from tests.unit.helpers import by_kind, rendered_for


def test_namespaces_are_labelled_with_their_domain():
    namespaces = {ns["metadata"]["name"]: ns["metadata"]["labels"]["datamesh.io/domain"]
                  for ns in rendered_for("docker-desktop")["namespaces"] if ns["kind"] == "Namespace"}
    assert namespaces == {"jupyterhub": "platform", "data-platform": "platform",
                          "sales-domain": "sales", "marketing-domain": "marketing"}


def test_every_namespace_enforces_restricted_pod_security_by_default():
    for ns in by_kind(rendered_for("docker-desktop")["namespaces"], "Namespace").values():
        labels = ns["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_a_baseline_inventory_enforces_baseline_and_still_warns_at_restricted(write_inventory):
    for ns in by_kind(rendered_for(str(write_inventory("security: {pod_security: baseline}\n")))["namespaces"], "Namespace").values():
        labels = ns["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_status_names_every_weakened_protection_and_its_key():
    from datamesh.status import security_lines

    strong = security_lines({"network_policies": True, "pod_security": "restricted", "trino_auth": True}, {})
    assert not any("OFF" in line or "WEAKER" in line for line in strong)
    weak = security_lines({"network_policies": False, "pod_security": "baseline", "trino_auth": False},
                          {"sales-domain": "baseline"})
    assert "security.network_policies: false" in weak[0]
    assert "security.pod_security: baseline" in weak[1] and "sales-domain=baseline" in weak[1]
    assert "security.trino_auth: false" in weak[2]
