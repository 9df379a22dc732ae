"""Faults the service testbed can be put in, for the tests of `invoke verify`: each a context
manager that breaks one thing the way it breaks in a cluster, and puts it back on the way out
(also when the test fails), waiting until the service answers again.

    trino_stopped()             the Trino process is stopped (a coordinator that died)
    bucket_removed(bucket)      the bucket's folder is moved out of the S3 server's root: the S3 API
                                answers NoSuchBucket, and the data come back untouched
    hub_with_wrong_proxy_token()  the hub restarted with a proxy token the proxy does not accept:
                                JupyterHub stops at start when it cannot read the proxy's routes
    docs_not_served()           the docs pod's sync stopped and its site emptied: nginx serves no docs
"""

from __future__ import annotations

import contextlib
import shutil
from typing import Iterator

from testbed import objectstore, services
from testbed.processes import run_dir, stop_one


@contextlib.contextmanager
def trino_stopped() -> Iterator[None]:
    stop_one("trino")
    try:
        yield
    finally:
        services.restart("trino")


@contextlib.contextmanager
def bucket_removed(bucket: str) -> Iterator[None]:
    folder = objectstore.data_folder(services.saved_config()["s3"]) / bucket
    away = run_dir() / "s3" / f"{bucket}.removed"
    folder.rename(away)
    try:
        yield
    finally:
        away.rename(folder)


@contextlib.contextmanager
def hub_with_wrong_proxy_token() -> Iterator[None]:
    services.restart("jupyterhub-hub", env={"CONFIGPROXY_AUTH_TOKEN": "not-the-proxy-token"}, wait=False)
    try:
        yield
    finally:
        services.restart("jupyterhub-hub")


@contextlib.contextmanager
def docs_not_served() -> Iterator[None]:
    stop_one("docs-sync")
    site = run_dir() / "nginx" / "html"
    away = run_dir() / "nginx" / "html.removed"
    shutil.rmtree(away, ignore_errors=True)
    site.rename(away)
    site.mkdir()
    try:
        yield
    finally:
        shutil.rmtree(site)
        away.rename(site)
        services.restart("dbt-docs")
