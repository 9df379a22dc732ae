"""The platform's namespaces, labelled with the domain each one belongs to."""

from datamesh.manifests import metadata

DEPENDS_ON: list[str] = []
DOMAINS = {"jupyterhub": "platform", "platform": "platform", "sales": "sales", "marketing": "marketing"}


def render(vars: dict) -> list[dict]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": metadata("namespaces", vars["namespaces"][key], labels={"datamesh.io/domain": domain}),
        }
        for key, domain in DOMAINS.items()
    ]
