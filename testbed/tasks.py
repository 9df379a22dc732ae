"""`invoke testbed.up` and `invoke testbed.down`: the test clusters, started and stopped from the
command line (tasks.py adds this collection to its own)."""

from __future__ import annotations

from invoke import Collection, Exit, task

from datamesh import playbook as playbooks

TESTBEDS = ("cluster", "services")


def _testbeds(only: str | None) -> list[str]:
    chosen = playbooks.parse_list(only) or list(TESTBEDS)
    unknown = [name for name in chosen if name not in TESTBEDS]
    if unknown:
        raise Exit(f"error: --only names {', '.join(unknown)}; testbeds are: {', '.join(TESTBEDS)}.", code=1)
    return chosen


@task(name="up", help={"only": "cluster or services (default: both)"})
def testbed_up(c, only=None):
    """Start the test clusters: a real control plane with KWOK nodes, and the services run natively; both: joined. Builds what is missing."""
    import importlib

    from testbed.common import TestbedError

    chosen = _testbeds(only)
    try:
        for name in chosen:
            importlib.import_module(f"testbed.{name}").up()
        if set(chosen) == set(TESTBEDS):  # the pods reach the programs: testbed/joined.py
            importlib.import_module("testbed.joined").up()
    except TestbedError as error:
        raise Exit(f"error: {error}", code=1) from None
    print("testbed ready: run `. .testbed/env` to point datamesh and kubectl at it")


@task(name="down", help={"only": "cluster or services (default: both)"})
def testbed_down(c, only=None):
    """Stop the testbeds; nothing of them keeps running."""
    import importlib

    chosen = _testbeds(only)
    if "cluster" in chosen and importlib.import_module("testbed.cluster").is_up():
        importlib.import_module("testbed.joined").down()
    for name in reversed(chosen):
        importlib.import_module(f"testbed.{name}").down()


collection = Collection("testbed", testbed_up, testbed_down)
