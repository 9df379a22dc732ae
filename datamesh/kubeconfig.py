"""A kube context as datamesh connects with it: the server, how to trust it and how to log in.

Read from the kubeconfig directly for what Docker Desktop, kind, k3d, minikube and most remote
clusters write there (client certificates, bearer tokens and token files, CA files or data,
tls-server-name, proxy-url, insecure-skip-tls-verify). A user logging in any other way (an exec
plugin such as EKS's or GKE's, an auth-provider, basic auth) is handed to the official client's
loader, which refreshes such credentials. Importing the official client takes half a second, more
than a no-op `invoke up` spends on all its requests, so it is imported only then (and for
port-forward streams). Nothing here talks to the API: datamesh/cluster.py does.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from datamesh.errors import DatameshError

OUR_WAY = {"client-certificate", "client-certificate-data", "client-key", "client-key-data", "token", "tokenFile"}


@dataclass
class Login:
    """What each request to one API server needs."""

    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    tls_server_name: str | None = None
    proxy: str | None = None
    headers: Callable[[], dict[str, str]] = field(default=lambda: {})


def contexts(path: Path) -> tuple[dict, list[str], str | None]:
    """The parsed kubeconfig, its context names and its current context."""
    try:
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        names = [c["name"] for c in data.get("contexts") or []]
    except (OSError, yaml.YAMLError, TypeError, KeyError, AttributeError) as exc:
        raise DatameshError(f"cannot read kubeconfig {path} ({exc}); fix or regenerate it.") from exc
    return data, names, data.get("current-context")


def login(path: Path, data: dict, context: str) -> Login:
    """How to reach and log in to the API server of `context`."""
    def entry(kind: str, name: str) -> dict:
        found = next((e for e in data.get(f"{kind}s") or [] if e.get("name") == name), None)
        if found is None:
            raise DatameshError(f"kube context '{context}' names {kind} '{name}', which {path} does not define; fix the kubeconfig.")
        return found.get(kind) or {}

    try:
        ctx = next(c["context"] for c in data["contexts"] if c["name"] == context)
        cluster, user = entry("cluster", ctx["cluster"]), entry("user", ctx.get("user", ""))
    except (KeyError, TypeError, StopIteration) as exc:
        raise DatameshError(f"kube context '{context}' in {path} is incomplete ({exc}); fix or regenerate the kubeconfig.") from exc
    if set(user) - OUR_WAY:
        return official_login(path, context)
    base = path.parent
    made = Login(
        server=str(cluster.get("server", "")).rstrip("/"),
        ca_file=file_of(cluster, "certificate-authority", base),
        cert_file=file_of(user, "client-certificate", base),
        key_file=file_of(user, "client-key", base),
        verify=not cluster.get("insecure-skip-tls-verify", False),
        tls_server_name=cluster.get("tls-server-name"),
        proxy=cluster.get("proxy-url"),
    )
    token, token_file = user.get("token"), user.get("tokenFile")
    if token:
        made.headers = lambda: {"authorization": f"Bearer {token}"}
    elif token_file:  # read on each request: the file is rotated under us (projected service account tokens)
        made.headers = lambda: {"authorization": f"Bearer {Path(token_file).read_text().strip()}"}
    if not made.server:
        raise DatameshError(f"kube context '{context}' in {path} names no server; fix or regenerate the kubeconfig.")
    return made


def file_of(entry: dict, key: str, base: Path) -> str | None:
    """A file the kubeconfig names (relative to the kubeconfig's folder), or its `-data` written to a
    private file for this process, as the official client does: TLS libraries want files."""
    if entry.get(f"{key}-data"):
        return private_file(base64.b64decode(entry[f"{key}-data"]))
    if entry.get(key):
        return str((base / Path(entry[key]).expanduser()))
    return None


_folder: list[str] = []


def private_file(content: bytes) -> str:
    if not _folder:
        _folder.append(tempfile.mkdtemp(prefix="datamesh-kube-"))
        atexit.register(shutil.rmtree, _folder[0], True)
    handle, name = tempfile.mkstemp(dir=_folder[0])
    with os.fdopen(handle, "wb") as out:
        out.write(content)
    return name


def official_login(path: Path, context: str) -> Login:
    """The official client's loader, for logins it refreshes (exec plugins, auth-providers)."""
    from kubernetes import client, config

    settings = client.Configuration()
    try:
        config.load_kube_config(str(path), context=context, client_configuration=settings)
    except Exception as exc:  # the loader raises many types for one cause: a context it cannot use
        raise DatameshError(f"cannot use kube context '{context}' from {path} ({exc}).") from exc

    def headers() -> dict[str, str]:
        value = settings.get_api_key_with_prefix("BearerToken", alias="authorization")  # refreshes an exec plugin's token
        return {"authorization": value} if value else {}

    return Login(server=settings.host.rstrip("/"), ca_file=settings.ssl_ca_cert, cert_file=settings.cert_file,
                 key_file=settings.key_file, verify=settings.verify_ssl,
                 tls_server_name=getattr(settings, "tls_server_name", None), proxy=settings.proxy, headers=headers)


def tls_context(login: Login) -> ssl.SSLContext:
    """Trust the server's CA (else certifi's, as the official client does) and present the client
    certificate; insecure-skip-tls-verify turns checking off, as kubectl does."""
    import certifi

    context = ssl.create_default_context(cafile=login.ca_file or certifi.where())
    if not login.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if login.cert_file:
        context.load_cert_chain(login.cert_file, login.key_file)
    return context


def stream_tls(login: Login) -> dict:
    """The same trust and certificate as options of a websocket (port-forward streams)."""
    import certifi

    options: dict = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    if login.verify:
        options = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": login.ca_file or certifi.where()}
    for option, value in (("certfile", login.cert_file), ("keyfile", login.key_file),
                          ("server_hostname", login.tls_server_name)):
        if value:
            options[option] = value
    return options
