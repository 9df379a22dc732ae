"""What the benchmarks on the joined testbed share: the way in, or how to start it."""

from __future__ import annotations

import os
import sys

from datamesh import inventory
from datamesh.cluster import Cluster
from datamesh.endpoints import Endpoints, Login
from datamesh.errors import DatameshError
from testbed import cluster as testbed


def reach(endpoint: str) -> tuple[Endpoints, Login]:
    """Endpoints on the joined testbed and the login of `endpoint`, whose pod must be Ready;
    else exit saying how to start the testbed."""
    os.environ.setdefault("KUBECONFIG", str(testbed.kubeconfig_path()))
    inv = inventory.load("testbed")
    try:
        endpoints = Endpoints(Cluster(inv), inv)
        login = endpoints.login(endpoint)
        endpoints.pod(endpoint)
    except DatameshError as error:
        sys.exit(f"{error}\nstart the joined testbed first: invoke testbed.up && . .testbed/env && invoke up --inventory testbed")
    return endpoints, login
