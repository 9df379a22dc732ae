"""`invoke status --check`: use each selected service once, through its endpoint (a port-forward
through the API server, datamesh/endpoints.py), with the login its Secret holds.

A pod can be Ready and its service still unusable (a wrong password, a catalog that failed, a
bucket never made); these checks answer "does it work from here", one line per service.
"""

from __future__ import annotations

import time
from typing import Callable

from datamesh import probes
from datamesh.endpoints import Endpoints
from datamesh.errors import DatameshError
from datamesh.manifests import platform
from datamesh.report import Reporter
from datamesh.role import Role
from datamesh.trino import access

Check = Callable[[Endpoints, str, str, int], str]


def postgres(reach: Endpoints, name: str, host: str, port: int) -> str:
    login = reach.login(name)
    probes.postgres_query(host, port, login.user, login.password, login.database, "SELECT 1")
    return f"SELECT 1 as {login.user} on {login.database}"


def trino(reach: Endpoints, name: str, host: str, port: int) -> str:
    login = access(reach)
    return f"Trino {probes.trino_started(login.url(host, port), ca=login.ca)} answers /v1/info on {login.scheme}, started"


def object_store(reach: Endpoints, name: str, host: str, port: int) -> str:
    login = reach.login(name)
    bucket = reach.inventory["minio"]["bucket"]
    probes.s3_bucket_listed(f"{host}:{port}", login.user, login.password, bucket)
    return f"lists bucket {bucket} as {login.user}"


def metastore(reach: Endpoints, name: str, host: str, port: int) -> str:
    databases = probes.thrift_get_all_databases(host, port)
    return f"get_all_databases: {', '.join(databases)}"


def http(path: str) -> Check:
    def check(reach: Endpoints, name: str, host: str, port: int) -> str:
        status, _ = probes.http_get(f"http://{host}:{port}{path}")
        if status != 200:
            raise probes.ProbeError(f"GET {path} answered {status}")
        return f"GET {path}: 200"
    return check


# role -> (endpoint name, check) for each service the role runs
CHECKS: dict[str, list[tuple[str, Check]]] = {
    "postgres": [(f"postgres-{pg['key']}", postgres) for pg in platform()["postgres"]],
    "minio": [("minio", object_store)],
    "hive-metastore": [("hive-metastore", metastore)],
    "trino": [("trino", trino)],
    "jupyterhub": [("jupyterhub", http("/hub/api"))],
    "grafana": [("grafana", http("/api/health"))],
    "dbt-docs": [("dbt-docs", http("/"))],
}


def run(reach: Endpoints, selected: list[Role], reporter: Reporter) -> bool:
    """Run the selected roles' checks, one line each; True when all pass."""
    healthy = True
    reporter.line("\nchecks (through port-forwards of the Kubernetes API):")
    for role in selected:
        for name, check in CHECKS.get(role.name, []):
            start = time.monotonic()
            try:
                with reach.open(name) as (host, port):
                    detail = check(reach, name, host, port)
                state = "ok"
            except DatameshError as error:
                detail, state, healthy = str(error), "FAILED", False
            reporter.line(f"  {name:<26} {state:<7} {detail} ({time.monotonic() - start:.2f} s)")
    return healthy
