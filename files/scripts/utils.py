"""Connections to the Data Mesh platform for the starter notebooks.

Every setting comes from an environment variable, which your JupyterHub server sets (logins included);
the defaults are the platform's in-cluster names. A missing login stops with one sentence that
names the variable. No password is ever written here.

    Trino (no login)      TRINO_HOST, TRINO_PORT, TRINO_USER (default: your JupyterHub user name)
    PostgreSQL sources    POSTGRES_SALES_HOST, _PORT, _DB, _USER, _PASSWORD
                          POSTGRES_MARKETING_HOST, _PORT, _DB, _USER, _PASSWORD
    Object store (S3)     MINIO_ENDPOINT (host:port), MINIO_ACCESS_KEY, MINIO_SECRET_KEY,
                          MINIO_SECURE (true for https), MINIO_BUCKET

Elsewhere, set a login for the current notebook with, for example, `%env POSTGRES_SALES_USER=...`
(`invoke status` shows where each login is kept).

Use it from a notebook:

    import utils
    utils.query("SELECT count(*) AS n FROM sales.public.orders")   # a pandas DataFrame
"""

from __future__ import annotations

import os
import re
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pandas as pd

# The home folder that holds scripts/, notebooks/ and data/ (~ inside JupyterHub).
HOME_DIR = Path(__file__).resolve().parents[1]
EXPORTS = HOME_DIR / "data" / "exports"
UPLOADS = HOME_DIR / "data" / "uploads"

NAMESPACE = "data-platform.svc.cluster.local"
POSTGRES_DEFAULTS = {
    "sales": (f"postgres-sales.{NAMESPACE}", "sales_db"),
    "marketing": (f"postgres-marketing.{NAMESPACE}", "marketing_db"),
}


def setting(name: str, default: str | None = None) -> str:
    """The value of environment variable `name`, else `default`; stops if neither is set."""
    value = os.environ.get(name) or default
    if not value:
        raise RuntimeError(f"The environment variable {name} is not set: set it (for example "
                           f"`%env {name}=...` in this notebook) and run the cell again.")
    return value


# -- Trino: one SQL engine over every domain's catalogs --------------------------------------

def user_name() -> str:
    """Who you are on the platform: TRINO_USER, else your JupyterHub user, else jovyan."""
    return os.environ.get("TRINO_USER") or os.environ.get("JUPYTERHUB_USER") or "jovyan"


def safe_name(text: str | None = None) -> str:
    """`text` (default: your user name) reduced to a-z, 0-9 and _, for object keys and table names."""
    return re.sub(r"[^a-z0-9_]", "_", (text or user_name()).lower())


def trino_connection(catalog: str | None = None, schema: str | None = None):
    """A Trino DB-API connection (the platform's Trino asks for a user name, no password)."""
    import trino

    return trino.dbapi.connect(
        host=setting("TRINO_HOST", f"trino-coordinator.{NAMESPACE}"),
        port=int(setting("TRINO_PORT", "8080")),
        user=user_name(),
        catalog=catalog,
        schema=schema,
    )


def query(sql: str) -> pd.DataFrame:
    """Run one SQL statement on Trino and return its rows as a DataFrame.

    Decimal columns (money) come back as floats, so pandas and matplotlib can compute with them.
    Statements without rows (CREATE, DROP) return an empty DataFrame.
    """
    with closing(trino_connection()) as conn:
        cur = conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall()
        columns = [d[0] for d in cur.description] if cur.description else []
    return _decimals_to_float(pd.DataFrame(rows, columns=columns))


# -- PostgreSQL: each domain's operational database ------------------------------------------

def postgres_connection(domain: str):
    """A psycopg2 connection to the "sales" or "marketing" PostgreSQL database."""
    import psycopg2

    if domain not in POSTGRES_DEFAULTS:
        raise ValueError(f"Unknown domain {domain!r}: use one of {', '.join(POSTGRES_DEFAULTS)}.")
    host, database = POSTGRES_DEFAULTS[domain]
    prefix = f"POSTGRES_{domain.upper()}_"
    return psycopg2.connect(
        host=setting(prefix + "HOST", host),
        port=int(setting(prefix + "PORT", "5432")),
        dbname=setting(prefix + "DB", database),
        user=setting(prefix + "USER"),
        password=setting(prefix + "PASSWORD"),
        connect_timeout=10,
    )


def postgres_query(domain: str, sql: str, params=None) -> pd.DataFrame:
    """Run one SELECT on the domain's PostgreSQL database and return its rows as a DataFrame."""
    with closing(postgres_connection(domain)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
        columns = [d[0] for d in cur.description]
    return _decimals_to_float(pd.DataFrame(rows, columns=columns))


# -- Object store: the data lake bucket ------------------------------------------------------

def bucket() -> str:
    """The data lake bucket (MINIO_BUCKET, default datalake)."""
    return setting("MINIO_BUCKET", "datalake")


def s3_client():
    """A minio.Minio client for the object store (path-style requests, as S3 servers other than AWS need)."""
    from minio import Minio

    endpoint = setting("MINIO_ENDPOINT", f"minio.{NAMESPACE}:9000")
    secure = os.environ.get("MINIO_SECURE", "false").strip().lower() in ("1", "true", "yes", "on")
    if "://" in endpoint:  # tolerate http://host:port: Minio wants host:port and a secure flag
        scheme, endpoint = endpoint.split("://", 1)
        secure = scheme == "https"
    return Minio(
        endpoint.rstrip("/"),
        access_key=setting("MINIO_ACCESS_KEY"),
        secret_key=setting("MINIO_SECRET_KEY"),
        secure=secure,
    )


def _decimals_to_float(df: pd.DataFrame) -> pd.DataFrame:
    for column in df.columns[df.dtypes == object]:
        values = df[column].dropna()
        if len(values) and values.map(lambda v: isinstance(v, Decimal)).all():
            df[column] = df[column].astype(float)
    return df
