"""SQL through the platform's Trino from the user's machine, for the seed steps: each statement
names what it does, so a failure is one sentence saying what failed and where to look."""

from __future__ import annotations

import contextlib
from typing import Iterator

from datamesh import probes
from datamesh.errors import DatameshError

USER = "admin"  # the Trino user the seed steps run as


class Trino:
    def __init__(self, url: str, hint: str, user: str = USER):
        self.url, self.hint, self.user = url, hint, user

    def __call__(self, sql: str, what: str) -> list[list]:
        try:
            return probes.trino_query(self.url, sql, user=self.user)
        except probes.ProbeError as exc:
            raise DatameshError(f"{what} failed: {exc}; {self.hint}.") from exc


@contextlib.contextmanager
def connect(reach, hint: str = "check the trino role with `invoke status`") -> Iterator[Trino]:
    """A Trino that runs statements through a port-forward to the coordinator, open for the block."""
    with reach.open("trino") as (host, port):
        yield Trino(f"http://{host}:{port}", hint)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
