"""Seed step "docs": `dbt docs generate`, published where the dbt-docs pod serves it from.

The three files the docs site needs (manifest.json, catalog.json, index.html) go to
s3://<bucket>/<dbt_docs.prefix>, where the pod's sync container picks them up within
`dbt_docs.sync_seconds` (roles/dbt-docs/render.py). A file whose content is unchanged (dbt's
generated_at and invocation id aside) is not uploaded again. The step ends only when the docs
server itself answers with the catalog just published, read through a port-forward to the
dbt-docs Service, so a finished `seed` means the docs are live.
"""

from __future__ import annotations

import hashlib
import json
import time

from datamesh import dbt, lake, probes, trino, wait
from datamesh.errors import DatameshError
from datamesh.role import ObjectResult

STEP = "docs"
NEEDS = ["trino", "minio", "dbt-docs"]
FILES = {"manifest.json": "application/json", "catalog.json": "application/json", "index.html": "text/html"}
DIGEST = "datamesh-content-sha256"  # x-amz-meta-datamesh-content-sha256: content_digest() of the object
GRACE = 60  # seconds the server may take beyond one sync interval


def content_digest(name: str, data: bytes) -> str:
    """sha256 of the file without what changes on every run: the JSON files' `metadata` (generated_at,
    invocation_id) and the parse time every node carries (`created_at`)."""
    if name.endswith(".json"):
        try:
            doc = json.loads(data)
        except ValueError:
            return hashlib.sha256(data).hexdigest()
        if isinstance(doc, dict):
            doc.pop("metadata", None)
        data = json.dumps(without_created_at(doc), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def without_created_at(value):
    if isinstance(value, dict):
        return {k: without_created_at(v) for k, v in value.items() if k != "created_at"}
    if isinstance(value, list):
        return [without_created_at(v) for v in value]
    return value


def published_digest(s3, bucket: str, key: str) -> str | None:
    found = lake.stat(s3, bucket, key)
    metadata = {k.lower(): v for k, v in (found.metadata or {}).items()} if found is not None else {}
    return metadata.get(f"x-amz-meta-{DIGEST}")


def wait_served(reach, want: str, seconds: float) -> float:
    """Seconds until the docs server answers /catalog.json with content of digest `want`."""
    started = time.monotonic()
    with reach.open("dbt-docs") as (host, port):
        def served() -> tuple[bool, str]:
            status, body = probes.http_get(f"http://{host}:{port}/catalog.json", timeout=10)
            return status == 200 and content_digest("catalog.json", body) == want, f"HTTP {status}"

        done, last = wait.poll(served, seconds)
    if not done:
        raise DatameshError(
            f"the docs were published to the object store, but the dbt-docs server did not serve them within "
            f"{seconds:.0f}s (last answer: {last}); check its sync container with "
            f"`kubectl -n {reach.namespace('dbt-docs')} logs deploy/dbt-docs -c sync`.")
    return time.monotonic() - started


def seed(ctx) -> list[ObjectResult]:
    work = dbt.workdir(ctx.inventory.name)
    settings = ctx.inventory["dbt_docs"]
    prefix = settings["prefix"]
    results = []
    login = trino.access(ctx.reach)
    with ctx.reach.open("trino") as endpoint:
        dbt.run(["docs", "generate"], endpoint=endpoint, login=login, work=work, dbt_vars=dbt.project_vars(ctx.inventory.vars),
                reporter=ctx.reporter)
    digests = {}
    with lake.bucket(ctx.reach) as (s3, bucket):
        for name, content_type in FILES.items():  # index.html last: the page comes once its data is there
            data = (work / "target" / name).read_bytes()
            digests[name] = content_digest(name, data)
            key = prefix + name
            if published_digest(s3, bucket, key) == digests[name]:
                results.append(ObjectResult("Object", bucket, key, "ok"))
                continue
            lake.write(s3, bucket, key, data, content_type, {DIGEST: digests[name]})
            results.append(ObjectResult("Object", bucket, key, "changed", "upload"))
    took = wait_served(ctx.reach, digests["catalog.json"], settings["sync_seconds"] + GRACE)
    ctx.reporter.line(f"  served:  the dbt-docs server answers with these docs ({took:.0f}s after publishing)")
    return results
