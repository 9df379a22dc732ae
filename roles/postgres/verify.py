"""PostgreSQL's checks: each of the five databases accepts the login its Secret holds, through a
port-forward of the Kubernetes API (so a password changed in a Secret but not in the database,
or the other way round, shows here before a client fails on it)."""

import pytest

from datamesh import probes
from datamesh.manifests import platform

NEXT_STEP = "a refused password means the Secret and the database disagree: put the Secret's old value back, or " \
            "set it in the database (ALTER ROLE ... PASSWORD) and restart the pods that read it; else see `invoke status`"
DATABASES = [f"postgres-{pg['key']}" for pg in platform()["postgres"]]


@pytest.mark.parametrize("name", DATABASES)
def test_each_database_accepts_the_login_its_secret_holds(reach, name):
    login = reach.login(name)
    with reach.open(name) as (host, port):
        rows = probes.postgres_query(host, port, login.user, login.password, login.database, "SELECT current_user")
    assert rows == [(login.user,)], f"{name} logged {login.user} in as {rows}"
