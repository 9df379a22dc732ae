"""Role selection: --only and --skip, refused when a dependency is left out."""

from __future__ import annotations

import pytest

from datamesh import playbook
from datamesh.errors import DatameshError


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
