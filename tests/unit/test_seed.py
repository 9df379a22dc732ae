"""`invoke seed` before it touches anything: its steps, its refusals of bad input, and the
preflight that names a missing component (the loads themselves run on the joined testbed:
tests/e2e/test_seed*.py)."""

from __future__ import annotations

import pytest

from datamesh import inventory, seed as seeding
from datamesh.endpoints import Endpoints
from datamesh.errors import DatameshError
from datamesh.report import Reporter
from tests.unit.test_cli import invoke

NO_CLUSTER = {"KUBECONFIG": "/nonexistent/kubeconfig", "DATAMESH_INVENTORY": "testbed"}


def test_seed_steps_run_in_playbook_order_and_need_their_components():
    steps = seeding.steps()
    assert [s.name for s in steps] == ["postgres", "lake", "hive", "dbt", "docs"]
    assert [s.role for s in steps] == ["postgres", "minio", "hive-metastore", "trino", "dbt-docs"]
    assert set(steps[2].needs) >= {"minio", "hive-metastore", "trino"}


def test_only_picks_steps_and_an_unknown_step_is_refused_with_the_known_ones():
    assert [s.name for s in seeding.steps(["hive", "postgres"])] == ["postgres", "hive"]
    with pytest.raises(DatameshError, match=r"--only names nope; seed's steps are: postgres, lake, hive, dbt, docs\."):
        seeding.steps(["postgres", "nope"])


@pytest.mark.parametrize("args, sentence", [
    (["--scale", "0"], "--scale must be a positive number"),
    (["--scale", "-1"], "--scale must be a positive number"),
    (["--scale", "abc"], "--scale must be a positive number (1 = about 10k customers and 50k orders), not 'abc'."),
    (["--scale", "nan"], "--scale must be a positive number"),
    (["--seed", "x1"], "--seed must be a whole number"),
    (["--seed", "-1"], "--seed must be a whole number, 0 or more"),
    (["--only", "postgres,nope"], "--only names nope; seed's steps are: postgres, lake, hive, dbt, docs."),
    (["--reset"], "--reset replaces every row and file of the sample tables, yours too, and needs a confirmation"),
])
def test_bad_arguments_are_refused_in_one_sentence_before_anything_connects(args, sentence):
    result = invoke("seed", *args, env=NO_CLUSTER)
    assert result.returncode == 1
    assert sentence in result.stderr
    assert "kubeconfig" not in result.stderr  # refused before the cluster was even looked for
    assert "Traceback" not in result.stderr


class EmptyCluster:
    """A cluster where nothing of the platform exists yet."""

    api_timeout = 10
    requests: dict = {}

    def get(self, obj):
        return None


def test_seed_before_up_names_the_component_and_invoke_up_and_writes_nothing():
    inv = inventory.load("testbed")
    ctx = seeding.Context(data=None, reach=Endpoints(EmptyCluster(), inv), reporter=Reporter())
    with pytest.raises(DatameshError, match=r"seed needs postgres, and StatefulSet data-platform/postgres-sales is "
                                            r"missing: run `invoke up` first\."):
        seeding.preflight(ctx, seeding.steps(["postgres"]))
