"""Fixtures: inventories written to a temporary folder, and rendered manifests.

Helpers that are not fixtures live in tests/unit/helpers.py.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from datamesh import inventory
from tests.unit.helpers import rendered_for

# Property tests: no deadline (a render takes milliseconds, a first schema load longer), no example
# database in the work tree; in CI (CI=true) the same examples on every run, so a failure reproduces.
settings.register_profile("dev", deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, print_blob=False)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def write_inventory(tmp_path: Path):
    """Write an inventory file and return its path."""
    def write(text: str, name: str = "custom.yml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write


@pytest.fixture(params=inventory.available())
def rendered(request) -> dict[str, list[dict]]:
    """Every role's manifests, once per inventory under inventory/."""
    return rendered_for(request.param)


@pytest.fixture(scope="module")
def dd() -> dict[str, list[dict]]:
    """Every role's manifests for docker-desktop, the default inventory."""
    return rendered_for("docker-desktop")


@pytest.fixture(scope="module")
def docker_desktop() -> inventory.Inventory:
    return inventory.load("docker-desktop")


@pytest.fixture
def with_workers(write_inventory) -> inventory.Inventory:
    """An inventory whose Trino has two workers."""
    return inventory.load(str(write_inventory("trino: {workers: 2}\n")))
