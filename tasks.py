"""datamesh's command line: `invoke up`, `plan`, `render`, `status`. Arguments only; the engine does the rest."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Collection, Exit, task

from datamesh import inventory as inventories, playbook as playbooks, report, status as statuses, teardown
from datamesh.errors import DatameshError

INVENTORY_HELP = "inventory name (inventory/NAME.yml) or path to a YAML file; default $DATAMESH_INVENTORY, else docker-desktop"
ONLY_HELP = "comma-separated roles to run, e.g. postgres,credentials (their dependencies must be included)"
SKIP_HELP = "comma-separated roles to leave out"


def _selection(inventory: str | None, only: str | None, skip: str | None, playbook: str = "up"):
    inv = inventories.load(inventory)
    book = playbooks.load(playbook)
    return inv, playbooks.select(book, playbooks.parse_list(only), playbooks.parse_list(skip))


def _fail(error: DatameshError) -> Exit:
    return Exit(f"error: {error}", code=1)


@task(help={"inventory": INVENTORY_HELP, "only": ONLY_HELP, "skip": SKIP_HELP,
            "report_json": "also write the recap as JSON to this file"})
def up(c, inventory=None, only=None, skip=None, report_json=None):
    """Converge the platform: apply what differs from the live cluster, wait until ready. Re-running changes nothing."""
    reporter = report.Reporter()
    try:
        inv, selected = _selection(inventory, only, skip)
        reporter.line(f"inventory: {inv.path} | roles: {', '.join(r.name for r in selected)}")
        results = playbooks.up(inv, selected, reporter)
    except DatameshError as error:
        raise _fail(error)
    reporter.recap(results)
    if report_json:
        report.write_json(results, Path(report_json), reporter.requests)
    failed = [r for r in results if r.failed]
    if failed:
        raise Exit(f"error: {failed[0].error}", code=2)


@task(help={"components": "comma-separated components (role names) to remove, without asking",
            "selective": "pick the components from a checklist on the terminal",
            "purge": "also delete data volumes, their namespaces and the credentials they were made with",
            "yes": "answer every confirmation with yes (needed for --purge without a terminal)",
            "cascade": "also remove the components that depend on the ones named",
            "dry_run": "list what would be deleted and kept; change nothing",
            "inventory": INVENTORY_HELP, "report_json": "also write the recap as JSON to this file"})
def down(c, components=None, selective=False, purge=False, yes=False, cascade=False, dry_run=False,
         inventory=None, report_json=None):
    """Remove datamesh components (all by default); data volumes are kept unless --purge."""
    reporter = report.Reporter()
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        inv = inventories.load(inventory)
        book = playbooks.load("up")
        requested = playbooks.parse_list(components)
        if selective and not requested:
            if not terminal:
                raise DatameshError("--selective asks on a terminal and there is none: name the components with --components a,b.")
            requested = teardown.choose(book.names(), input)
            if not requested:
                reporter.line("nothing chosen; nothing removed.")
                return
        cluster = playbooks.connect(inv, reporter)
        rendered = playbooks.render_all(book.roles, inv)
        results = teardown.down(inv, book.roles, rendered, cluster, reporter, requested=requested, cascade=cascade,
                                purge=purge, dry_run=dry_run, yes=yes, ask=input if terminal else None)
        reporter.requests = dict(cluster.requests)
    except DatameshError as error:
        raise _fail(error)
    if dry_run:
        return
    reporter.recap(results)
    if report_json:
        report.write_json(results, Path(report_json), reporter.requests)
    failed = [r for r in results if r.failed]
    if failed:
        raise Exit(f"error: {failed[0].error}", code=2)


@task(help={"inventory": INVENTORY_HELP, "only": ONLY_HELP, "skip": SKIP_HELP})
def plan(c, inventory=None, only=None, skip=None):
    """Show what `up` would change, per object, as a diff from a server-side dry run. Writes nothing."""
    reporter = report.Reporter()
    try:
        inv, selected = _selection(inventory, only, skip)
        entries = playbooks.plan(inv, selected, reporter)
    except DatameshError as error:
        raise _fail(error)
    marks = {"create": "+", "update": "~", "delete": "-", "none": "="}
    for entry in entries:
        reporter.line(f"{marks[entry.action]} {entry.action:<7} [{entry.role}] {entry.ref}")
        for line in entry.diff:
            reporter.line(f"    {line}")
    changes = sum(1 for e in entries if e.action != "none")
    reporter.line(f"\nplan: {changes} to change, {len(entries) - changes} unchanged")


@task(help={"out": "directory to write one YAML file per role into (created if missing)",
            "inventory": INVENTORY_HELP, "only": ONLY_HELP, "skip": SKIP_HELP})
def render(c, out="rendered", inventory=None, only=None, skip=None):
    """Write every manifest `up` would apply, one file per role. Needs no cluster."""
    try:
        inv, selected = _selection(inventory, only, skip)
        written = playbooks.write_rendered(playbooks.render_all(selected, inv), Path(out))
    except DatameshError as error:
        raise _fail(error)
    for path in written:
        print(path)


@task(help={"inventory": INVENTORY_HELP})
def status(c, inventory=None):
    """Show each component's objects and readiness, its addresses, and where its credentials are."""
    reporter = report.Reporter()
    try:
        inv, selected = _selection(inventory, None, None)
        cluster = playbooks.connect(inv, reporter)
        healthy = statuses.show(cluster, inv, selected, reporter)
    except DatameshError as error:
        raise _fail(error)
    if not healthy:
        raise Exit("some components are missing or not ready: run `invoke up`.", code=3)


TESTBEDS = ("cluster", "services")


def _testbeds(only: str | None) -> list[str]:
    chosen = playbooks.parse_list(only) or list(TESTBEDS)
    unknown = [name for name in chosen if name not in TESTBEDS]
    if unknown:
        raise Exit(f"error: --only names {', '.join(unknown)}; testbeds are: {', '.join(TESTBEDS)}.", code=1)
    return chosen


@task(name="up", help={"only": "cluster or services (default: both)"})
def testbed_up(c, only=None):
    """Start the test clusters: a real control plane with KWOK nodes, and the services run natively. Builds what is missing."""
    import importlib

    for name in _testbeds(only):
        importlib.import_module(f"tests.testbed.{name}").up()
    print("testbed ready: run `. .testbed/env` to point datamesh and kubectl at it")


@task(name="down", help={"only": "cluster or services (default: both)"})
def testbed_down(c, only=None):
    """Stop the testbeds; nothing of them keeps running."""
    import importlib

    for name in reversed(_testbeds(only)):
        importlib.import_module(f"tests.testbed.{name}").down()


@task(help={"inventory": INVENTORY_HELP})
def images(c, inventory=None):
    """Build the JupyterHub user image (files/images/jupyterhub-dbt) and load it into a kind, k3d or minikube cluster. Needs Docker."""
    from datamesh import images as user_images

    try:
        user_images.build(inventories.load(inventory))
    except DatameshError as error:
        raise _fail(error)


@task(name="cluster-config", help={"for": "kind or k3d",
                                  "inventory": "inventory name or path; default $DATAMESH_INVENTORY, else the one named like --for"})
def cluster_config(c, for_=None, inventory=None):
    """Print a kind or k3d cluster config that maps the platform's NodePorts to localhost."""
    from datamesh import clusterconfig

    try:
        print(clusterconfig.render(for_ or "", clusterconfig.inventory_for(for_ or "", inventory)), end="")
    except DatameshError as error:
        raise _fail(error)


testbed = Collection("testbed", testbed_up, testbed_down)
namespace = Collection(up, down, plan, render, status, images, cluster_config, testbed)
