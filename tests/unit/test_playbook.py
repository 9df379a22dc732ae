"""datamesh/playbook.py: role selection (--only and --skip, refused when a dependency is left out),
the playbook order and the rendered files."""

from __future__ import annotations

import pytest
import yaml

from datamesh import playbook, role
from datamesh.errors import DatameshError
from tests.unit.helpers import rendered_for


@pytest.fixture
def book():
    return playbook.load("up")


def names(roles):
    return [r.name for r in roles]


def test_up_playbook_order(book):
    assert book.names()[:6] == ["namespaces", "credentials", "postgres", "minio", "hive-metastore", "trino"]


def test_no_selection_runs_everything(book):
    assert names(playbook.select(book)) == book.names()


def test_only_keeps_playbook_order(book):
    assert names(playbook.select(book, ["credentials", "namespaces"])) == ["namespaces", "credentials"]


def test_only_without_a_dependency_is_refused_naming_it(book):
    with pytest.raises(DatameshError) as caught:
        playbook.select(book, ["postgres"])
    assert "role postgres depends on namespaces, credentials" in str(caught.value)


def test_skip_of_a_dependency_is_refused(book):
    with pytest.raises(DatameshError) as caught:
        playbook.select(book, skip=["credentials"])
    assert "role postgres depends on credentials" in str(caught.value)


def test_skip_of_a_leaf_is_fine(book):
    leaf = book.names()[-1]  # the last role: no role of the playbook can depend on it
    assert names(playbook.select(book, skip=[leaf])) == book.names()[:-1]


def test_unknown_role_name_is_refused(book):
    with pytest.raises(DatameshError) as caught:
        playbook.select(book, ["postgress"])
    assert "--only names postgress" in str(caught.value) and "namespaces, credentials, postgres" in str(caught.value)


def test_parse_list():
    assert playbook.parse_list(" a, b,,c ") == ["a", "b", "c"]
    assert playbook.parse_list(None) == []


def test_playbook_with_dependency_after_dependent_is_refused(tmp_path, monkeypatch):
    (tmp_path / "bad.yml").write_text("roles: [postgres, namespaces, credentials]\n")
    monkeypatch.setattr(playbook, "PLAYBOOK_DIR", tmp_path)
    with pytest.raises(DatameshError) as caught:
        playbook.load("bad")
    assert "runs postgres before its dependencies namespaces, credentials" in str(caught.value)


def test_roles_run_after_their_dependencies_in_the_playbook():
    names = playbook.load("up").names()
    assert names.index("postgres") < names.index("minio") < names.index("hive-metastore") < names.index("trino")
    assert {"postgres", "minio"} <= set(role.load("hive-metastore").depends_on)
    assert {"hive-metastore", "minio", "postgres"} <= set(role.load("trino").depends_on)


def test_render_task_writes_one_file_per_role_in_playbook_order(tmp_path):
    """Each file loads back as exactly the role's objects (strictly valid: tests/unit/test_invariants.py)."""
    rendered = rendered_for("docker-desktop")
    written = playbook.write_rendered(rendered, tmp_path / "out")
    assert [p.name for p in written] == [f"{i:02d}-{name}.yaml" for i, name in enumerate(playbook.load("up").names())]
    for path, (name, objects) in zip(written, rendered.items()):
        assert list(yaml.safe_load_all(path.read_text())) == objects, name
