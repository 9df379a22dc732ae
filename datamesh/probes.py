"""Small checks of a running service, shared by `invoke verify`, the tests and the testbed.

Each probe is plain client code and takes the address it checks: an HTTP GET, a login to
JupyterHub, a Trino query, a PostgreSQL query, an S3 client, a TCP connect and one Hive Metastore
call (get_all_databases, over Thrift's binary protocol). A probe that cannot reach or use its
service raises ProbeError, one sentence naming the service and the address.
"""

from __future__ import annotations

import base64
import contextlib
import http.cookiejar
import json
import re
import socket
import ssl
import struct
import time
import urllib.error
import urllib.parse
import urllib.request

from datamesh.errors import DatameshError


class ProbeError(DatameshError):
    """A service did not answer as it should; the message names it and its address."""


class LoginRefused(ProbeError):
    """The service answered and refused the login (as opposed to not answering at all)."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ------------------------------------------------------------------ TCP and HTTP


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to host:port is accepted."""
    with contextlib.suppress(OSError):
        with socket.create_connection((host, port), timeout=timeout):
            return True
    return False


def tls(ca: str | None) -> ssl.SSLContext | None:
    """A client TLS context that trusts the PEM certificate `ca` (and checks the host name), or None."""
    return ssl.create_default_context(cadata=ca) if ca else None


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def http_get(url: str, headers: dict | None = None, timeout: float = 5.0, ca: str | None = None) -> tuple[int, bytes]:
    """GET url: (status, body), whatever the status; ProbeError when nothing answers. `ca`: the PEM
    certificate an https URL's server must present (or be signed by)."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=tls(ca)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        raise ProbeError(f"nothing answered GET {url}: {getattr(e, 'reason', e)}") from e


# ------------------------------------------------------------------ Trino


def trino_query(url: str, sql: str, *, user: str = "admin", password: str | None = None, ca: str | None = None,
                timeout: float = 120) -> list[list]:
    """Run one statement through Trino's HTTP API at `url` (POST /v1/statement, then follow
    nextUri) and return all rows. With `password`, log in as `user` (HTTPS, trusting `ca`)."""
    headers = {"X-Trino-User": user, **(basic_auth(user, password) if password is not None else {})}
    context = tls(ca)
    req = urllib.request.Request(f"{url}/v1/statement", data=sql.encode(), method="POST",
                                 headers={**headers, "Content-Type": "text/plain"})
    rows: list[list] = []
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as r:
            doc = json.loads(r.read())
        while True:
            if "error" in doc:
                raise ProbeError(f"Trino at {url} refused the query: {doc['error'].get('message')}")
            rows.extend(doc.get("data") or [])
            nxt = doc.get("nextUri")
            if not nxt:
                return rows
            if time.monotonic() > deadline:
                raise ProbeError(f"Trino at {url} did not finish the query in {timeout:.0f}s: {sql}")
            with urllib.request.urlopen(urllib.request.Request(nxt, headers=headers), timeout=30, context=context) as r:
                doc = json.loads(r.read())
    except urllib.error.HTTPError as e:
        if e.code == 401:
            raise LoginRefused(f"Trino at {url} refused the login of {user!r}: {_first_line(e.read().decode(errors='replace'))}") from e
        raise ProbeError(f"Trino at {url} answered HTTP {e.code} to a query: {_first_line(e.read().decode(errors='replace'))}") from e
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ProbeError(f"Trino at {url} could not be queried: {getattr(e, 'reason', e)}") from e


def trino_started(url: str, ca: str | None = None) -> str:
    """Trino's version, once its /v1/info at `url` says it has started; ProbeError before that."""
    status, body = http_get(f"{url}/v1/info", ca=ca)
    info = json.loads(body) if status == 200 else {}
    if status != 200:
        raise ProbeError(f"Trino's /v1/info at {url} answered HTTP {status}")
    if info.get("starting", True):
        raise ProbeError(f"Trino at {url} is still starting; wait a minute and try again")
    return info.get("nodeVersion", {}).get("version", "?")


# ------------------------------------------------------------------ JupyterHub


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def hub_login(url: str, user: str, password: str, timeout: float = 30) -> http.cookiejar.CookieJar:
    """Log in to JupyterHub at `url` as a browser does (GET the form for its _xsrf, POST it);
    returns the session's cookies."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    try:
        with opener.open(f"{url}/hub/login", timeout=min(timeout, 10)) as r:
            page = r.read().decode()
    except (urllib.error.URLError, OSError) as e:
        raise ProbeError(f"JupyterHub at {url} did not serve its login page: {getattr(e, 'reason', e)}") from e
    m = re.search(r'name="_xsrf"\s+value="([^"]+)"', page)
    form = {"username": user, "password": password}
    if m:
        form["_xsrf"] = m.group(1)
    data = urllib.parse.urlencode(form).encode()
    try:
        opener.open(urllib.request.Request(f"{url}/hub/login?next=", data=data), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code != 302:
            raise LoginRefused(f"JupyterHub at {url} refused the login as {user} (HTTP {e.code})") from e
    except (urllib.error.URLError, OSError) as e:
        raise ProbeError(f"JupyterHub at {url} did not answer the login: {getattr(e, 'reason', e)}") from e
    if not any(c.name.startswith("jupyterhub-session-id") or c.name == "jupyterhub-hub-login" for c in jar):
        raise LoginRefused(f"JupyterHub at {url} set no session cookie for {user}: the login was refused")
    return jar


def hub_api(url: str, jar: http.cookiejar.CookieJar, path: str, method: str = "GET",
            timeout: float = 30) -> tuple[int, bytes]:
    """{method} {url}/hub/api{path} as the logged-in browser does: the session's cookies, and its _xsrf
    token (set by /hub/home) in X-XSRFToken, which JupyterHub 4 asks of cookie-authenticated API calls."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    try:
        with opener.open(f"{url}/hub/home", timeout=timeout) as page:
            page.read()
        xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
        request = urllib.request.Request(f"{url}/hub/api{path}", method=method,
                                         headers={"X-XSRFToken": xsrf, "Referer": f"{url}/hub/home"})
        with opener.open(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        raise ProbeError(f"JupyterHub at {url} did not answer {method} /hub/api{path}: {getattr(e, 'reason', e)}") from e


# ------------------------------------------------------------------ PostgreSQL


def postgres_query(host: str, port: int, user: str, password: str, database: str, sql: str,
                   *, timeout: float = 5) -> list[tuple]:
    """Run `sql` (one or more statements, autocommit) on PostgreSQL at host:port and return the
    rows of the last one ([] when it returns none). `timeout` bounds the connection attempt."""
    import psycopg2

    try:
        conn = psycopg2.connect(host=host, port=port, user=user, password=password, dbname=database,
                                connect_timeout=max(1, int(timeout)))
    except psycopg2.Error as e:
        raise ProbeError(f"PostgreSQL at {host}:{port} refused {user} on {database}: {_first_line(e)}") from e
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description is not None else []
    except psycopg2.Error as e:
        raise ProbeError(f"PostgreSQL at {host}:{port} ({database}) failed the query: {_first_line(e)}") from e
    finally:
        conn.close()


# ------------------------------------------------------------------ object store


def s3_client(endpoint: str, access_key: str, secret_key: str, http_client=None):
    """A minio client for the S3 API at `endpoint` (host:port, or http(s)://host:port)."""
    from minio import Minio

    parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    return Minio(parsed.netloc, access_key=access_key, secret_key=secret_key, secure=parsed.scheme == "https",
                 http_client=http_client)


def s3_bucket_listed(endpoint: str, access_key: str, secret_key: str, bucket: str) -> None:
    """ProbeError unless the login sees `bucket` at `endpoint`."""
    buckets = s3_buckets(endpoint, access_key, secret_key)
    if bucket not in buckets:
        raise ProbeError(f"the object store has no bucket {bucket} (it has: {', '.join(buckets) or 'none'})")


def s3_buckets(endpoint: str, access_key: str, secret_key: str, timeout: float = 5) -> list[str]:
    """The names of the buckets the login sees at `endpoint` (one try, no retries)."""
    import urllib3
    from minio.error import MinioException

    pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
    try:
        return [b.name for b in s3_client(endpoint, access_key, secret_key, http_client=pool).list_buckets()]
    except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as e:
        raise ProbeError(f"the object store at {endpoint} did not list its buckets: {e}") from e
    finally:
        pool.clear()


# ------------------------------------------------------------------ Hive Metastore (Thrift binary protocol)

_VERSION_1 = -2147418112  # 0x80010000: strict binary protocol, version 1
_CALL, _REPLY = 1, 2
_STOP, _LIST, _STRING = 0, 15, 11


def get_all_databases_call(seqid: int = 1) -> bytes:
    """ThriftHiveMetastore.get_all_databases() as a CALL message: header, empty args struct."""
    name = b"get_all_databases"
    return struct.pack(">iI", _VERSION_1 | _CALL, len(name)) + name + struct.pack(">i", seqid) + bytes([_STOP])


def read_get_all_databases_reply(need) -> list[str]:
    """Decode the REPLY to get_all_databases; `need(n)` returns exactly the next n bytes. Raises
    ValueError for anything but a success holding a list of strings."""
    (version_type,) = struct.unpack(">i", need(4))
    mtype = version_type & 0xFF
    (nlen,) = struct.unpack(">i", need(4))
    need(nlen)  # the method name
    need(4)  # seqid
    if mtype != _REPLY:
        raise ValueError(f"message type {mtype} instead of REPLY")
    dbs: list[str] = []
    while True:
        ftype = need(1)[0]
        if ftype == _STOP:
            return dbs
        (fid,) = struct.unpack(">h", need(2))
        if ftype != _LIST or fid != 0:
            raise ValueError(f"field {fid} of type {ftype} (an exception) instead of the result")
        need(1)  # element type (string)
        (count,) = struct.unpack(">i", need(4))
        for _ in range(count):
            (slen,) = struct.unpack(">i", need(4))
            dbs.append(need(slen).decode())


def thrift_get_all_databases(host: str, port: int, timeout: float = 5.0) -> list[str]:
    """One real metastore call, get_all_databases(), to the Hive Metastore at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(get_all_databases_call())
            buf = b""

            def need(n: int) -> bytes:
                nonlocal buf
                while len(buf) < n:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError("the connection was closed mid-reply")
                    buf += chunk
                out, buf = buf[:n], buf[n:]
                return out

            return read_get_all_databases_reply(need)
    except (OSError, ValueError, struct.error) as e:
        raise ProbeError(f"the Hive Metastore at {host}:{port} did not list its databases: {e}") from e
