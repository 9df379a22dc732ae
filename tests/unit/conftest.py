"""Shared fixtures: inventories written to a temporary folder, and every rendered manifest."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from datamesh import inventory, playbook


@pytest.fixture
def write_inventory(tmp_path: Path):
    """Write an inventory file and return its path."""
    def write(text: str, name: str = "custom.yml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write


def rendered_for(name: str) -> dict[str, list[dict]]:
    inv = inventory.load(name)
    book = playbook.load("up")
    return playbook.render_all(playbook.select(book), inv)


@pytest.fixture(params=inventory.available())
def rendered(request) -> dict[str, list[dict]]:
    """Every role's manifests, once per inventory under inventory/."""
    return rendered_for(request.param)
