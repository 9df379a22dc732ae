"""Seed step "dbt": the domains' data products built and tested by `dbt build` on Trino.

The project is dbt_projects/ (datamesh/dbt.py runs it through a port-forward). After a green build
the step keeps, in the bucket under STATE, the manifest it built and a checksum of every source
table it read. The next seed then rebuilds only what changed, as far as dbt allows: when the
sources' checksums are the same and every model's relation is still there, it runs
`dbt build --select state:modified+` against the kept manifest (nothing at all when nothing
changed); when a source changed, a relation is missing, nothing is kept, or the run resets, it
builds the whole project. One result per model: "changed" when built, "ok" when left as it was.

A Hive product's folder that holds files while the metastore has no table there (the metastore
lost its tables; dropping a table deletes its files otherwise) would make CREATE TABLE fail: the
step refuses, naming the folder, and with --reset deletes the files first. They are derived data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from datamesh import dbt, lake, trino
from datamesh.errors import DatameshError
from datamesh.role import ObjectResult
from datamesh.trino import quote

STEP = "dbt"
NEEDS = ["postgres", "minio", "hive-metastore", "trino"]
STATE = "_datamesh/dbt-state/"  # in the inventory's bucket: manifest.json and sources.json of the last green build
HINT = "check the trino role with `invoke status`"


def models(manifest: dict) -> dict[str, dict]:
    return {uid: node for uid, node in manifest.get("nodes", {}).items() if node.get("resource_type") == "model"}


def source_tables(manifest: dict) -> list[tuple[str, str, str]]:
    """(catalog, schema, table) of every source the project declares."""
    return sorted({(s["database"], s["schema"], s.get("identifier") or s["name"])
                   for s in manifest.get("sources", {}).values()})


def checksum_sql(catalog: str, schema: str, table: str, columns: list[str]) -> str:
    row = ", ".join(quote(c) for c in columns)
    return (f"SELECT count(*), to_hex(checksum(ROW({row}))) "
            f"FROM {quote(catalog)}.{quote(schema)}.{quote(table)}")


def source_checksums(query, manifest: dict) -> dict[str, list]:
    """{catalog.schema.table: [rows, checksum]}: Trino's order-independent checksum of every row."""
    out = {}
    for catalog, schema, table in source_tables(manifest):
        name = f"{catalog}.{schema}.{table}"
        columns = [row[0] for row in query(
            f"SELECT column_name FROM {quote(catalog)}.information_schema.columns WHERE table_schema = "
            f"{trino.literal(schema)} AND table_name = {trino.literal(table)} ORDER BY ordinal_position",
            f"listing the columns of the source {name}")]
        if not columns:
            out[name] = [None, None]
            continue
        out[name] = query(checksum_sql(catalog, schema, table, columns), f"checksumming the source {name}")[0]
    return out


def existing(query, manifest: dict) -> set[str]:
    """`catalog.schema.name` of the models' relations that exist now."""
    found = set()
    for catalog in sorted({n["database"] for n in models(manifest).values()}):
        schemas = sorted({n["schema"] for n in models(manifest).values() if n["database"] == catalog})
        listed = ", ".join(trino.literal(s) for s in schemas)
        for schema, name in query(f"SELECT table_schema, table_name FROM {quote(catalog)}.information_schema.tables "
                                  f"WHERE table_schema IN ({listed})", f"listing the tables of {catalog}"):
            found.add(f"{catalog}.{schema}.{name}")
    return found


def lake_prefix(node: dict) -> str:
    """Where a Hive table product keeps its files in the bucket: dbt_projects/macros/create_schema.sql
    puts every Hive schema at s3a://<bucket>/<schema>/, and a table lives in a folder of its name."""
    return f"{node['schema']}/{node.get('alias') or node['name']}/"


def leftovers(s3, bucket: str, manifest: dict, present: set[str]) -> list[str]:
    """Folders of Hive table products that hold files while the metastore has no table there (a
    metastore that lost its tables): CREATE TABLE refuses such a folder."""
    found = []
    for node in models(manifest).values():
        if node["database"] != "hive" or node.get("config", {}).get("materialized") != "table" \
                or relation(node) in present:
            continue
        prefix = lake_prefix(node)
        with lake.s3_errors(bucket, prefix, "list"):
            if next(iter(s3.list_objects(bucket, prefix, recursive=True)), None) is not None:
                found.append(prefix)
    return found


def clear_leftovers(ctx, s3, bucket: str, prefixes: list[str]) -> list[ObjectResult]:
    if prefixes and not ctx.reset:
        raise DatameshError(
            f"s3://{bucket}/{prefixes[0]}{' and ' + str(len(prefixes) - 1) + ' more' if len(prefixes) > 1 else ''} "
            "hold the files of an earlier build, but the Hive metastore has no table there (it lost its tables): "
            "run `invoke seed --only dbt --reset` to delete them and build again.")
    deleted = []
    for prefix in prefixes:
        with lake.s3_errors(bucket, prefix, "delete"):
            for found in s3.list_objects(bucket, prefix, recursive=True):
                s3.remove_object(bucket, found.object_name)
        deleted.append(ObjectResult("Object", bucket, prefix, "changed", "delete"))
    return deleted


def relation(node: dict) -> str:
    return f"{node['database']}.{node['schema']}.{node.get('alias') or node['name']}"


def selection(kept: dict | None, sources: dict, present: set[str], reset: bool) -> tuple[list[str], str]:
    """(the build's selection arguments, why) from what the last green build kept."""
    if reset:
        return [], "--reset rebuilds everything"
    if kept is None:
        return [], "no earlier build is recorded"
    if kept["sources"] != sources:
        changed = sorted(k for k in sources if kept["sources"].get(k) != sources[k])
        return [], f"the sources changed since the last build ({', '.join(changed) or 'their list'})"
    missing = sorted(relation(n) for n in models(kept["manifest"]).values() if relation(n) not in present)
    if missing:
        return [], f"{', '.join(missing[:3])}{' and more' if len(missing) > 3 else ''} no longer exist"
    return ["--select", "state:modified+", "--state", "{state}"], "sources unchanged: building what changed"


def load_kept(s3, bucket: str) -> dict | None:
    manifest, sources = (lake.read(s3, bucket, STATE + name) for name in ("manifest.json", "sources.json"))
    if manifest is None or sources is None:
        return None
    try:
        return {"manifest": json.loads(manifest), "sources": json.loads(sources)}
    except ValueError:
        return None


def keep(s3, bucket: str, manifest_file: Path, sources: dict) -> None:
    lake.write(s3, bucket, STATE + "sources.json", json.dumps(sources, sort_keys=True).encode(), "application/json")
    lake.write(s3, bucket, STATE + "manifest.json", manifest_file.read_bytes(), "application/json")


def seed(ctx) -> list[ObjectResult]:
    work = dbt.workdir(ctx.inventory.name)
    dbt_vars = dbt.project_vars(ctx.inventory.vars)
    login = trino.access(ctx.reach)
    with ctx.reach.open("trino") as (host, port), lake.bucket(ctx.reach) as (s3, bucket):
        query = trino.Trino(login.url(host, port), HINT, login)
        run = dict(endpoint=(host, port), login=login, work=work, dbt_vars=dbt_vars, reporter=ctx.reporter)
        dbt.run(["parse"], **run)
        manifest = dbt.read_json(work / "target" / "manifest.json")
        sources = source_checksums(query, manifest)
        kept = load_kept(s3, bucket)
        present = existing(query, manifest) | (existing(query, kept["manifest"]) if kept else set())
        cleared = clear_leftovers(ctx, s3, bucket, leftovers(s3, bucket, manifest, present))
        args, why = selection(kept, sources, present, ctx.reset)
        ctx.reporter.line(f"  dbt build: {why}")
        state = work / "state"
        if "{state}" in args:
            shutil.rmtree(state, ignore_errors=True)
            state.mkdir(parents=True)
            (state / "manifest.json").write_text(json.dumps(kept["manifest"]))
            args = [str(state) if a == "{state}" else a for a in args]
        outcome = dbt.run(["build", *args], **run)
        keep(s3, bucket, work / "target" / "manifest.json", sources)
    built = {r["unique_id"] for r in outcome.ran("model") if r.get("status") == "success"}
    if not outcome.results:
        ctx.reporter.line("  dbt build: nothing changed since the last build")
    tests = outcome.ran("test")
    if tests:
        passed = sum(1 for r in tests if r.get("status") == "pass")
        ctx.reporter.line(f"  tests:   {passed} of {len(tests)} passed")
    manifest = dbt.read_json(work / "target" / "manifest.json")
    return cleared + [ObjectResult("Model", f"{n['database']}.{n['schema']}", n["name"],
                         "changed" if uid in built else "ok", "update" if uid in built else "none")
            for uid, n in sorted(models(manifest).items(), key=lambda item: relation(item[1]))]
