"""Seed step "hive": the schema hive.raw and one external table per data set table, made through Trino.

`hive.raw.<table>` reads the Parquet files of `s3a://<bucket>/raw/<domain>/<table>/` (the lake
step writes them), with the columns and types of the data set's Parquet schema. Each table is
checked first (information_schema.columns and SHOW CREATE TABLE): one with those columns, that
location and format PARQUET is left alone ("ok"); a missing one is created; an external one with
another definition is dropped and created again (dropping an external table keeps its files).
A managed table under that name is refused, since dropping it deletes its data, unless the run
resets. Every table is then counted through Trino against the data set's row count.
"""

from __future__ import annotations

import re

import pyarrow as pa

from datamesh import sampledata, trino
from datamesh.trino import literal, quote
from datamesh.errors import DatameshError
from datamesh.role import ObjectResult

STEP = "hive"
NEEDS = ["minio", "hive-metastore", "trino"]

CATALOG, SCHEMA = "hive", "raw"
NAMESPACE = f"{CATALOG}.{SCHEMA}"
HINT = "check the trino and hive-metastore roles with `invoke status`"
FORMAT = "PARQUET"


# -- the definitions (pure) ---------------------------------------------------------------------

def trino_type(arrow: pa.DataType) -> str:
    """The Trino type of a Hive table column that reads a Parquet column of this Arrow type."""
    simple = {
        pa.int8(): "tinyint", pa.int16(): "smallint", pa.int32(): "integer", pa.int64(): "bigint",
        pa.float32(): "real", pa.float64(): "double", pa.bool_(): "boolean",
        pa.string(): "varchar", pa.large_string(): "varchar", pa.date32(): "date",
        pa.binary(): "varbinary", pa.large_binary(): "varbinary",
    }
    if arrow in simple:
        return simple[arrow]
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow) and arrow.unit == "ms" and arrow.tz is None:
        return "timestamp(3)"  # the Hive catalog's precision (hive.timestamp-precision=MILLISECONDS)
    raise DatameshError(f"the data set has a column of Arrow type {arrow}, which the Hive tables do not map: "
                        "add it to trino_type() in roles/hive-metastore/seed.py.")


def columns(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(f.name, trino_type(f.type)) for f in schema]


def location(bucket: str, table) -> str:
    return f"s3a://{bucket}/raw/{table.domain}/{table.name}/"


def schema_location(bucket: str) -> str:
    return f"s3a://{bucket}/raw/"


def qualified(table) -> str:
    return f"{NAMESPACE}.{quote(table.name)}"


def create_schema_sql(bucket: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {NAMESPACE} WITH (location = {literal(schema_location(bucket))})"


def create_table_sql(bucket: str, table) -> str:
    cols = ",\n".join(f"  {quote(name)} {kind}" for name, kind in columns(table.schema))
    return (f"CREATE TABLE {qualified(table)} (\n{cols}\n)\n"
            f"WITH (external_location = {literal(location(bucket, table))}, format = {literal(FORMAT)})")


def drop_table_sql(table) -> str:
    return f"DROP TABLE {qualified(table)}"


def count_sql(table) -> str:
    return f"SELECT count(*) FROM {qualified(table)}"


COLUMNS_SQL = (f"SELECT table_name, column_name, data_type FROM {CATALOG}.information_schema.columns "
               f"WHERE table_schema = '{SCHEMA}' ORDER BY table_name, ordinal_position")


def properties(create: str) -> dict[str, str]:
    """The WITH (...) properties of a SHOW CREATE TABLE text: external_location, format, ..."""
    return {key: value.replace("''", "'")
            for key, value in re.findall(r"^\s*(\w+)\s*=\s*'((?:[^']|'')*)'", create, re.MULTILINE)}


def same_location(a: str | None, b: str) -> bool:
    return a is not None and a.rstrip("/") == b.rstrip("/")


def decide(wanted: list[tuple[str, str]], live: list[tuple[str, str]] | None, create: str | None,
           want_location: str) -> tuple[str, str]:
    """What to do with one table: ("ok" | "create" | "replace" | "managed", why)."""
    if live is None:
        return "create", "missing"
    props = properties(create or "")
    if "external_location" not in props:
        return "managed", "a managed table"
    why = []
    if [(n.lower(), t.lower()) for n, t in live] != [(n.lower(), t.lower()) for n, t in wanted]:
        why.append(f"columns {', '.join(f'{n} {t}' for n, t in live)}")
    if not same_location(props["external_location"], want_location):
        why.append(f"location {props['external_location']}")
    if props.get("format", "").upper() != FORMAT:
        why.append(f"format {props.get('format')}")
    return ("replace", "; ".join(why)) if why else ("ok", "")


# -- through Trino ------------------------------------------------------------------------------

def live_columns(query) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for table_name, column, kind in query(COLUMNS_SQL, f"listing the columns of {NAMESPACE}"):
        found.setdefault(table_name, []).append((column, kind))
    return found


def seed(ctx) -> list[ObjectResult]:
    bucket = ctx.inventory["minio"]["bucket"]
    tables = list(sampledata.TABLES.values())
    results: list[ObjectResult] = []
    with trino.connect(ctx.reach, HINT) as query:
        schemas = {row[0] for row in query(f"SHOW SCHEMAS FROM {CATALOG}", f"listing the schemas of {CATALOG}")}
        if SCHEMA not in schemas:
            query(create_schema_sql(bucket), f"creating the schema {NAMESPACE}")
            results.append(ObjectResult("Schema", CATALOG, SCHEMA, "changed", "create"))
        else:
            results.append(ObjectResult("Schema", CATALOG, SCHEMA, "ok"))
        live = live_columns(query)
        for table in tables:
            name = f"{NAMESPACE}.{table.name}"
            create = None
            if table.name in live:
                create = query(f"SHOW CREATE TABLE {qualified(table)}", f"reading the definition of {name}")[0][0]
            todo, why = decide(columns(table.schema), live.get(table.name), create, location(bucket, table))
            if todo == "managed":
                if not ctx.reset:
                    raise DatameshError(f"{name} is a managed table, whose data DROP TABLE would delete, not the "
                                        f"external table over {location(bucket, table)}: drop it yourself, or run "
                                        "seed with --reset to replace it.")
                todo = "replace"
            if todo == "replace":
                query(drop_table_sql(table), f"dropping {name} ({why})")
            if todo != "ok":
                query(create_table_sql(bucket, table), f"creating {name}")
            counted = query(count_sql(table), f"counting the rows of {name}")[0][0]
            expected = ctx.data.rows(table.name)
            if counted != expected:
                raise DatameshError(f"{name} counts {counted} rows through Trino, but the data set has {expected}: "
                                    f"check the files under {location(bucket, table)} (run seed's lake step).")
            action = {"ok": "none", "create": "create", "replace": "update"}[todo]
            results.append(ObjectResult("Table", NAMESPACE, table.name, "ok" if todo == "ok" else "changed", action))
    return results
