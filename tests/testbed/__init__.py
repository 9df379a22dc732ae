"""The testbeds: cluster.py (a real control plane with KWOK nodes) and services.py (the platform's
programs run natively from the rendered configs). Both cache what they build here, by version."""

import os
from pathlib import Path


def cache_root() -> Path:
    """$DATAMESH_CACHE/testbed, by default ~/.cache/datamesh/testbed: outside the work tree."""
    base = os.environ.get("DATAMESH_CACHE") or Path.home() / ".cache" / "datamesh"
    return Path(base) / "testbed"


def component_dir(name: str, version: str) -> Path:
    return cache_root() / f"{name}-{version}"
