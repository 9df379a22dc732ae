"""Connections to the Data Mesh platform for the starter notebooks.

Every setting comes from an environment variable, which your JupyterHub server sets (logins included);
the defaults are the platform's in-cluster names. A missing login stops with one sentence that
names the variable. No password is ever written here.

    Trino                 TRINO_HOST, TRINO_PORT (8443, HTTPS), TRINO_USER, TRINO_PASSWORD, TRINO_CA (the
                          file holding the certificate Trino presents); without TRINO_PASSWORD, plain
                          HTTP on 8080 with a user name only (a platform without Trino logins)
    Object store (S3)     MINIO_ENDPOINT (host:port), MINIO_ACCESS_KEY, MINIO_SECRET_KEY,
                          MINIO_SECURE (true for https), MINIO_BUCKET

The domains' databases are read through Trino, the platform's one governed way in: no server
holds a database login. Elsewhere, set a login for the current notebook with, for example,
`%env TRINO_PASSWORD=...` (`invoke status` shows where each login is kept).

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
DOMAIN_SOURCES = ("sales", "marketing")  # Trino catalogs of the domains' operational databases


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
    """A Trino DB-API connection: your login over HTTPS, trusting the certificate in TRINO_CA."""
    import trino

    password = os.environ.get("TRINO_PASSWORD")
    login = {}
    if password:
        import requests

        # a session that trusts Trino's certificate alone and ignores REQUESTS_CA_BUNDLE, which
        # requests would otherwise prefer to the session's own CA (psf/requests#3829)
        session = requests.Session()
        session.verify, session.trust_env = setting("TRINO_CA", "/etc/datamesh/trino/ca.crt"), False
        login = {"http_scheme": "https", "auth": trino.auth.BasicAuthentication(user_name(), password),
                 "http_session": session}
    return trino.dbapi.connect(
        host=setting("TRINO_HOST", f"trino-coordinator.{NAMESPACE}"),
        port=int(setting("TRINO_PORT", "8443" if password else "8080")),
        user=user_name(),
        catalog=catalog,
        schema=schema,
        **login,
    )


def query(sql: str, catalog: str | None = None) -> pd.DataFrame:
    """Run one SQL statement on Trino and return its rows as a DataFrame.

    Decimal columns (money) come back as floats, so pandas and matplotlib can compute with them.
    Statements without rows (CREATE, DROP) return an empty DataFrame.
    """
    with closing(trino_connection(catalog)) as conn:
        cur = conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall()
        columns = [d[0] for d in cur.description] if cur.description else []
    return _decimals_to_float(pd.DataFrame(rows, columns=columns))


# -- Each domain's operational database, read through Trino --------------------------------

def postgres_query(domain: str, sql: str) -> pd.DataFrame:
    """Run one SELECT on the "sales" or "marketing" PostgreSQL database and return its rows as a
    DataFrame. It goes through Trino's catalog of that database (read-only, the governed way in),
    so `public.customers` means that database's table."""
    if domain not in DOMAIN_SOURCES:
        raise ValueError(f"Unknown domain {domain!r}: use one of {', '.join(DOMAIN_SOURCES)}.")
    return query(sql, catalog=domain)


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
