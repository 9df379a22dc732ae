"""The pure parts of the terminal experience: the endpoint table, the checklist's lines and what
`up --selective` adds, and the live rows' phases (rendered by rich into a string). The real terminal:
tests/integration/test_terminal.py (tmux)."""

from __future__ import annotations

import io
import re

import pytest

from datamesh import checklist, inventory, overview, playbook
from datamesh.errors import DatameshError
from datamesh.live import LiveReporter
from datamesh.role import ObjectResult, Result
from tests.unit.helpers import all_objects, rendered_for


@pytest.fixture(scope="module")
def roles():
    return playbook.load("up").roles


def test_the_lab_inventory_shows_passwords_and_a_generated_one_the_command_that_reads_it(write_inventory):
    lab = overview.endpoints(inventory.load("docker-desktop"), all_objects(rendered_for("docker-desktop")), lambda o: "ok")
    grafana = next(row for row in lab if row.name == "grafana")
    assert grafana.url == "http://localhost:30083" and grafana.user == "admin"
    assert grafana.in_cluster == "grafana.data-platform.svc.cluster.local:3000"
    assert grafana.password == inventory.load("docker-desktop")["credentials"]["lab_passwords"]["grafana"]
    generated = inventory.load(str(write_inventory("credentials: {policy: generate}\n")))
    rows = {row.name: row for row in overview.endpoints(generated, all_objects(rendered_for(str(generated.path))),
                                                        lambda o: "ok")}
    assert rows["trino"].url.startswith("https://localhost:30081") and rows["trino"].user == "admin"
    assert rows["trino"].password == ("kubectl -n data-platform get secret trino-users -o go-template="
                                      "'{{index .data \"admin-password\" | base64decode}}'")
    assert rows["dbt-docs"].user == "" and rows["dbt-docs"].password == ""
    assert set(rows) == {"jupyterhub", "trino", "minio-console", "grafana", "dbt-docs"}


def test_the_table_aligns_every_column_but_the_last():
    rows = [overview.Endpoint("a", "short", "http://h:1", "a.ns.svc:1", "u", "a long command", "ready"),
            overview.Endpoint("b", "a-longer-name", "http://h:22", "b.ns.svc:2", "", "", "missing")]
    lines = overview.table(rows)
    assert lines[0].startswith("ENDPOINT       URL")
    assert [line.index("http") for line in lines[1:]] == [15, 15]
    assert lines[2].endswith("missing  -")


def test_the_checklist_line_has_memory_and_dependencies(roles):
    inv = inventory.load("docker-desktop")
    trino = next(r for r in roles if r.name == "trino")
    assert re.fullmatch(r"trino +1536 MiB  needs namespaces, credentials, postgres, minio, hive-metastore",
                        checklist.describe(trino, roles, inv, removing=False))
    postgres = next(r for r in roles if r.name == "postgres")
    assert checklist.describe(postgres, roles, inv, removing=True).endswith("needed by hive-metastore, trino")


def test_choosing_trino_brings_what_it_needs_in_playbook_order(roles):
    assert checklist.needed(roles, ["trino"]) == ["namespaces", "credentials", "postgres", "minio", "hive-metastore", "trino"]
    assert checklist.needed(roles, ["grafana"]) == ["namespaces", "credentials", "grafana"]


def test_up_selective_without_a_terminal_names_only(roles):
    with pytest.raises(DatameshError, match="--selective asks on a terminal and there is none: name the components with --only"):
        checklist.for_up(roles, inventory.load("docker-desktop"), print)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_rows_follow_each_component_through_its_phases():
    out = Terminal()
    reporter = LiveReporter(out)
    reporter.console.width = 160
    reporter.role_start("postgres")
    reporter.object_done(ObjectResult("StatefulSet", "data-platform", "postgres-sales", "changed", "create"))
    obj = {"kind": "StatefulSet", "metadata": {"name": "postgres-sales", "labels": {"app.kubernetes.io/component": "postgres"}}}
    reporter.waiting(obj, "pulling postgres:15.10, 12s")
    assert reporter.rows["postgres"].phase == "pulling image"
    reporter.waiting(obj, "0/1 ready; warning: pod postgres-sales-0 is Pending: 0/1 nodes are available")
    assert reporter.rows["postgres"].phase == "starting" and reporter.rows["postgres"].warning
    reporter.verifying("postgres")
    assert reporter.rows["postgres"].phase == "verifying" and not reporter.rows["postgres"].warning
    reporter.role_start("trino")
    reporter.role_failed("trino", "Deployment data-platform/trino-coordinator was not ready; more")
    done, failed = Result("postgres"), Result("trino", error="not ready")
    reporter.recap([done, failed])
    assert [(name, row.phase) for name, row in reporter.rows.items()] == [("postgres", "done"), ("trino", "failed")]
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # colours and cursor moves
    assert "ROLE [postgres]" in text and "RECAP" in text
    assert re.search(r"postgres +done +\d+s", text) and re.search(r"trino +failed +\d+s +Deployment", text)


def test_down_rows_start_deleting_and_seed_rows_running():
    for first in ("deleting", "running"):
        reporter = LiveReporter(Terminal(), first_phase=first)
        reporter.role_start("grafana")
        assert reporter.rows["grafana"].phase == first
        reporter.close()
