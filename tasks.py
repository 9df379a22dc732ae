"""datamesh's command line: `invoke up`, `seed`, `verify`, `down`, `doctor`, `plan`, `render`, `status`.

Each task parses its arguments, makes one engine call and finishes; how a task finishes is written
once below: `_exits` turns an error a user can fix into its sentence and exit code 1, `_finish`
prints the recap, writes --report-json and exits 2 when a role failed.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from invoke import Collection, Exit, task

from datamesh import diagnostics, inventory as inventories, live, playbook as playbooks, report, status as statuses, teardown
from datamesh.errors import DatameshError
from datamesh.role import Result
from testbed import tasks as testbeds

INVENTORY_HELP = "inventory name (inventory/NAME.yml) or path to a YAML file; default $DATAMESH_INVENTORY, else docker-desktop"
ONLY_HELP = "comma-separated roles to run, e.g. postgres,credentials (their dependencies must be included)"
SKIP_HELP = "comma-separated roles to leave out"
LOCK_HELP = "seconds to wait for another up, down or seed on this platform to finish (default: the inventory's timeouts.lock, 300)"


def _exits(body):
    """A DatameshError ends the task with `error: <sentence>` and exit code 1, never a traceback."""
    @functools.wraps(body)
    def run(*args, **kwargs):
        try:
            return body(*args, **kwargs)
        except DatameshError as error:
            raise Exit(f"error: {error}", code=1) from None
    return run


def _finish(reporter: report.Reporter, results: list[Result], report_json: str | None, bundle=None) -> None:
    """The end of `up`, `seed` and `down`: the recap, the --report-json file, and exit code 2 when a
    role failed, after `bundle(results)` wrote the diagnostics, whose folder is the last line printed."""
    reporter.recap(results)
    if report_json:
        report.write_json(results, Path(report_json), reporter.requests)
    failed = [r for r in results if r.failed]
    if failed:
        raise Exit(f"error: {failed[0].error}" + _diagnostics(bundle, results), code=2)


def _diagnostics(bundle, results) -> str:
    """`\ndiagnostics: <folder>` after `bundle(results)` wrote it; empty without a bundle to write."""
    if bundle is None:
        return ""
    from datamesh.errors import shown

    return f"\ndiagnostics: {shown(bundle(results))}"


def _selection(inventory: str | None, only: str | None = None, skip: str | None = None):
    """--inventory, --only and --skip, parsed: the inventory and the up playbook's roles to run."""
    return playbooks.selection(inventory, playbooks.parse_list(only), playbooks.parse_list(skip))


@task(help={"inventory": INVENTORY_HELP, "only": ONLY_HELP, "skip": SKIP_HELP,
            "report_json": "also write the recap as JSON to this file",
            "verify": "afterwards run every check of `invoke verify` (NodePorts, SQL, in-cluster paths)",
            "lock_timeout": LOCK_HELP, "skip_doctor": "do not run `invoke doctor`'s checks first (a ✗ there stops `up`)",
            "selective": "pick the components from a checklist on the terminal (what they need is added)",
            "plain": "plain lines, no live progress rows (the default off a terminal)"})
@_exits
def up(c, inventory=None, only=None, skip=None, report_json=None, verify=False, lock_timeout=None, skip_doctor=False,
       selective=False, plain=False):
    """Converge the platform: apply what differs from the live cluster, wait until ready, check each role. Re-running changes nothing."""
    reporter = live.reporter(plain)
    if selective and not only:
        from datamesh import checklist

        only = ",".join(checklist.for_up(playbooks.load("up").roles, inventories.load(inventory), reporter.line))
        if not only:
            reporter.line("nothing chosen; nothing applied.")
            return
    inv, selected = _selection(inventory, only, skip)
    results = playbooks.up(inv, selected, reporter, _seconds("--lock-timeout", lock_timeout), doctor=not skip_doctor)
    _finish(reporter, results, report_json, functools.partial(diagnostics.after_results, inv, selected))
    playbooks.what_you_got(inv, selected, results, reporter)
    if verify:
        from datamesh import verify as verifying  # pytest loads only when checks run

        _verified(verifying.verify(inv, selected, reporter, workers=inv["verify"]["workers"]),
                  functools.partial(diagnostics.after_checks, inv, selected))


def _verified(checks: list, bundle) -> None:
    failed = [c for c in checks if c.status == "failed"]
    if failed:
        raise Exit(f"error: {len(failed)} check(s) failed, first {failed[0].component}: {failed[0].message}"
                   + _diagnostics(bundle, checks), code=2)


@task(help={"inventory": INVENTORY_HELP, "only": "comma-separated roles whose checks run (default: all)",
            "skip": SKIP_HELP, "k": "only checks whose names match this pytest -k expression, e.g. 'login or nodeport'",
            "junit": "also write the results as a JUnit XML file", "report_json": "also write the results as JSON to this file",
            "workers": "spread the checks over this many processes (default: the inventory's verify.workers; 0: one per CPU; 1: this one)"})
@_exits
def verify(c, inventory=None, only=None, skip=None, k=None, junit=None, report_json=None, workers=None):
    """Check that the platform works: NodePorts from your machine, logins, SQL on every catalog, in-cluster paths."""
    from datamesh import verify as verifying

    inv, selected = playbooks.selection(inventory, playbooks.parse_list(only), playbooks.parse_list(skip), dependencies=False)
    count = inv["verify"]["workers"] if workers is None else _workers(str(workers))
    _verified(verifying.verify(inv, selected, report.Reporter(), keyword=k, junit=junit, report_json=report_json,
                               workers=count), functools.partial(diagnostics.after_checks, inv, selected))


def _seconds(flag: str, text) -> float | None:
    """A flag's number of seconds (0 or more), or None when it was not given."""
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise Exit(f"error: {flag} must be a number of seconds, 0 or more, not {text!r}.", code=1)
    return seconds


def _workers(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 32:
        raise Exit(f"error: --workers must be a whole number from 0 (one per CPU) to 32, not {text!r}.", code=1)
    return int(text)


@task(help={"components": "comma-separated components (role names) to remove, without asking",
            "selective": "pick the components from a checklist on the terminal",
            "purge": "also delete data volumes, their namespaces and the credentials they were made with",
            "yes": "answer every confirmation with yes (needed for --purge without a terminal)",
            "cascade": "also remove the components that depend on the ones named",
            "dry_run": "list what would be deleted and kept; change nothing",
            "inventory": INVENTORY_HELP, "report_json": "also write the recap as JSON to this file",
            "lock_timeout": LOCK_HELP, "plain": "plain lines, no live progress rows (the default off a terminal)"})
@_exits
def down(c, components=None, selective=False, purge=False, yes=False, cascade=False, dry_run=False,
         inventory=None, report_json=None, lock_timeout=None, plain=False):
    """Remove datamesh components (all by default); data volumes are kept unless --purge."""
    reporter = live.reporter(plain, "deleting")
    results = teardown.down(inventories.load(inventory), reporter, requested=playbooks.parse_list(components),
                            selective=selective, cascade=cascade, purge=purge, dry_run=dry_run, yes=yes,
                            lock_timeout=_seconds("--lock-timeout", lock_timeout))
    if results is not None:  # None: a dry run, or nothing chosen
        _finish(reporter, results, report_json)


@task(help={"inventory": INVENTORY_HELP, "only": "comma-separated roles whose needs are checked (default: all)",
            "skip": SKIP_HELP, "report_json": "also write the findings as JSON to this file"})
@_exits
def doctor(c, inventory=None, only=None, skip=None, report_json=None):
    """Check the cluster before `up`: context, API, room for the requests, architectures, NodePorts, disk. Writes nothing."""
    from datamesh import doctor as doctors

    inv, selected = playbooks.selection(inventory, playbooks.parse_list(only), playbooks.parse_list(skip), dependencies=False)
    manifests = [obj for objects in playbooks.render_all(selected, inv).values() for obj in objects]
    problems = doctors.failed(doctors.run(inv, manifests, print, report_json=Path(report_json) if report_json else None))
    if problems:
        raise Exit(f"error: {len(problems)} check(s) failed; fix them as each line says, then run `invoke doctor` again.", code=2)


@task(help={"inventory": INVENTORY_HELP, "only": ONLY_HELP, "skip": SKIP_HELP})
@_exits
def plan(c, inventory=None, only=None, skip=None):
    """Show what `up` would change, per object, as a diff from a server-side dry run. Writes nothing."""
    playbooks.plan(*_selection(inventory, only, skip), report.Reporter())


@task(help={"out": "directory to write one YAML file per role into (created if missing)",
            "inventory": INVENTORY_HELP, "only": ONLY_HELP, "skip": SKIP_HELP})
@_exits
def render(c, out="rendered", inventory=None, only=None, skip=None):
    """Write every manifest `up` would apply, one file per role. Needs no cluster."""
    for path in playbooks.render(*_selection(inventory, only, skip), Path(out)):
        print(path)


@task(help={"inventory": INVENTORY_HELP, "only": ONLY_HELP, "skip": SKIP_HELP,
            "check": "also use each service once through a port-forward of the Kubernetes API, with its login",
            "output": "table (default) or json (one document on stdout; other lines go to stderr)",
            "watch": "show the table again every this many seconds until Ctrl-C (e.g. --watch 5)"})
@_exits
def status(c, inventory=None, only=None, skip=None, check=False, output="table", watch=None):
    """Show each component's objects and readiness, its endpoints and logins, and where its credentials are.
    Exits 3 when something is missing, not ready or failed a check."""
    if output not in ("table", "json"):
        raise Exit(f"error: --output must be table or json, not {output!r}.", code=1)
    every = _seconds("--watch", watch)
    if every is not None and (every < 1 or output == "json" or check):
        raise Exit("error: --watch takes a number of seconds, 1 or more, and goes with the table only "
                   "(not with --output json or --check).", code=1)
    inv, selected = _selection(inventory, only, skip)
    if every is not None:
        healthy = statuses.watch(inv, selected, report.Reporter(), every)
    else:
        reporter = report.Reporter(sys.stderr if output == "json" else None)
        healthy = statuses.run(inv, selected, reporter, check=check, output=output)
    if not healthy:
        raise Exit("some components are missing, not ready or failed a check: see above, then run `invoke up`.", code=3)


def _scale(text: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        scale = 0.0
    if not 0 < scale < float("inf"):
        raise Exit(f"error: --scale must be a positive number (1 = about 10k customers and 50k orders), not {text!r}.", code=1)
    return scale


def _seed_number(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise Exit(f"error: --seed must be a whole number, 0 or more (the same number makes the same data), not {text!r}.", code=1)
    return seed


@task(help={"seed": "random seed: the same seed and scale make the same data (default 42)",
            "scale": "size: 1 = about 10k customers, 50k orders, 20k leads, 60 campaigns; linear (default 1)",
            "only": "comma-separated steps: postgres, lake, hive, dbt, docs (default: all)",
            "reset": "replace the sample tables and files even when they hold rows seed did not write, and rebuild "
                     "every data product (asks first)",
            "yes": "answer the --reset confirmation with yes (needed without a terminal)",
            "inventory": INVENTORY_HELP, "report_json": "also write the recap as JSON to this file",
            "lock_timeout": LOCK_HELP, "plain": "plain lines, no live progress rows (the default off a terminal)"})
@_exits
def seed(c, seed="42", scale="1", only=None, reset=False, yes=False, inventory=None, report_json=None,
         lock_timeout=None, plain=False):
    """Load the sample data set (source databases, data lake, Hive), build the data products with dbt and publish
    their docs. Re-running changes nothing."""
    from datamesh import sampledata, seed as seeding

    data = sampledata.Dataset(seed=_seed_number(str(seed)), scale=_scale(str(scale)))
    reporter = live.reporter(plain, "running")
    inv, selected = _selection(inventory)
    results = seeding.seed(inv, reporter, data=data, only=playbooks.parse_list(only),
                           reset=reset, yes=yes, lock_timeout=_seconds("--lock-timeout", lock_timeout))
    _finish(reporter, results, report_json, functools.partial(diagnostics.after_results, inv, selected))


@task(help={"inventory": INVENTORY_HELP})
@_exits
def images(c, inventory=None):
    """Build the JupyterHub user image (files/images/jupyterhub-dbt) and load it into a kind, k3d or minikube cluster. Needs Docker."""
    from datamesh import images as user_images

    user_images.build(inventories.load(inventory))


@task(name="cluster-config", help={"for": "kind or k3d",
                                  "inventory": "inventory name or path; default $DATAMESH_INVENTORY, else the one named like --for"})
@_exits
def cluster_config(c, for_=None, inventory=None):
    """Print a kind or k3d cluster config that maps the platform's NodePorts to localhost."""
    from datamesh import clusterconfig

    print(clusterconfig.render(for_ or "", clusterconfig.inventory_for(for_ or "", inventory)), end="")


namespace = Collection(up, doctor, down, plan, render, status, seed, verify, images, cluster_config, testbeds.collection)
