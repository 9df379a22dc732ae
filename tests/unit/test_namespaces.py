"""The namespaces role: the platform's namespaces, labelled with their domain."""

from __future__ import annotations

from tests.unit.helpers import rendered_for


def test_namespaces_are_labelled_with_their_domain():
    namespaces = {ns["metadata"]["name"]: ns["metadata"]["labels"]["datamesh.io/domain"]
                  for ns in rendered_for("docker-desktop")["namespaces"]}
    assert namespaces == {"jupyterhub": "platform", "data-platform": "platform",
                          "sales-domain": "sales", "marketing-domain": "marketing"}
