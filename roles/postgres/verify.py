"""PostgreSQL's checks: each of the five databases accepts the login its Secret holds, through a
port-forward of the Kubernetes API (so a password changed in a Secret but not in the database,
or the other way round, shows here before a client fails on it), and each read-only login reads
and may not write."""

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


READERS = [f"postgres-{pg['key']}" for pg in platform()["postgres"] if pg.get("reader_schemas")]


@pytest.mark.parametrize("name", READERS)
@pytest.mark.next_step("the readonly Job makes this login: `kubectl -n {platform} get jobs -l app.kubernetes.io/component=postgres`; "
                       "delete the database's Job and run `invoke up --only postgres` to make it again")
def test_each_read_only_login_reads_and_may_not_write(reach, name):
    target = reach.target(name)
    user = reach.secret_value(target.namespace, target.secret, "reader-username")
    password = reach.secret_value(target.namespace, target.secret, "reader-password")
    database = reach.login(name).database
    with reach.open(name) as (host, port):
        assert probes.postgres_query(host, port, user, password, database, "SELECT current_user") == [(user,)]
        with pytest.raises(probes.ProbeError, match="permission denied"):
            probes.postgres_query(host, port, user, password, database, "CREATE TABLE public.datamesh_verify (x int)")
