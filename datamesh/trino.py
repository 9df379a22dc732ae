"""SQL through the platform's Trino from the user's machine, for the seed steps: each statement
names what it does, so a failure is one sentence saying what failed and where to look."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from datamesh import probes
from datamesh.errors import DatameshError
from datamesh.manifests import TRINO_TLS_SECRET, TRINO_USERS_SECRET

USER = "admin"  # the Trino user the seed steps run as
USERS_SECRET, TLS_SECRET = TRINO_USERS_SECRET, TRINO_TLS_SECRET


@dataclass(frozen=True)
class Access:
    """How a client logs in to Trino: as `user` with a password over HTTPS trusting `ca`, or, with
    `security.trino_auth: false`, as any user named over plain HTTP."""

    user: str = USER
    password: str | None = None
    ca: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.password is not None else "http"

    def url(self, host: str, port: int) -> str:
        return f"{self.scheme}://{host}:{port}"

    def query(self, url: str, sql: str, **kwargs) -> list[list]:
        return probes.trino_query(url, sql, user=self.user, password=self.password, ca=self.ca, **kwargs)


def access(reach, user: str = USER) -> Access:
    """`user`'s login from the Secrets the credentials role keeps (or none, without Trino auth)."""
    if not reach.inventory["security"]["trino_auth"]:
        return Access(user)
    return Access(user, reach.secret_value("platform", USERS_SECRET, f"{user}-password"),
                  reach.secret_value("platform", TLS_SECRET, "ca.crt"))


class Trino:
    def __init__(self, url: str, hint: str, login: Access = Access()):
        self.url, self.hint, self.login = url, hint, login

    def __call__(self, sql: str, what: str) -> list[list]:
        try:
            return self.login.query(self.url, sql)
        except probes.ProbeError as exc:
            raise DatameshError(f"{what} failed: {exc}; {self.hint}.") from exc


@contextlib.contextmanager
def connect(reach, hint: str = "check the trino role with `invoke status`") -> Iterator[Trino]:
    """A Trino that runs statements as `admin` through a port-forward to the coordinator, open for the block."""
    login = access(reach)
    with reach.open("trino") as (host, port):
        yield Trino(login.url(host, port), hint, login)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
