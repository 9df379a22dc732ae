"""`invoke verify`: the roles' checks, run by pytest.

The checks are pytest-testinfra tests: datamesh/common_checks.py for every selected role, plus
roles/<name>/verify.py where a role has one, with the fixtures of datamesh/fixtures.py. This
module builds pytest's arguments, runs it in this process (its own terminal output kept aside),
spreads the checks over pytest-xdist workers when asked, and turns the reports into one result
per check: printed as a table per component, returned for the recap and --report-json.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from datamesh import ROOT
from datamesh.errors import DatameshError
from datamesh.inventory import Inventory
from datamesh.nodeports import testinfra_spec
from datamesh.report import Reporter
from datamesh.role import ROLES_DIR, Role

COMMON = ROOT / "datamesh" / "common_checks.py"
# pytest's own plugins the checks do without; unraisableexception's gc.collect alone costs ~45 ms a session
UNUSED_PLUGINS = ("cacheprovider", "unraisableexception", "threadexception", "faulthandler", "doctest", "pastebin",
                  "stepwise", "debugging", "legacypath", "logging")


@dataclass
class Check:
    """One check's outcome: status ok, failed or skipped, with its sentence and next step."""

    component: str
    name: str
    status: str
    seconds: float = 0.0
    message: str = ""
    next: str = ""

    def to_json(self) -> dict:
        return {"component": self.component, "name": self.name, "status": self.status,
                "seconds": round(self.seconds, 3), "message": self.message or None, "next": self.next or None}


def check_name(nodeid: str, component: str = "") -> str:
    """`roles/trino/verify.py::test_select_1_answers[local]` -> `select 1 answers [local]`; a common
    check's own role is left out of its parameters (the table's heading names it)."""
    name = nodeid.split("::")[-1]
    name = name[5:] if name.startswith("test_") else name
    base, _, param = name.partition("[")
    param = param.rstrip("]")
    if component and param:
        param = "" if param == component else param.removesuffix(f"-{component}").removeprefix(f"{component}-")
    param = param.split("?")[0]  # a host spec's ssh_config and key paths say nothing in a table
    return base.replace("_", " ") + (f" [{param}]" if param else "")


def pytest_args(inventory: Inventory, roles: list[str], *, keyword: str | None = None, junit: str | None = None, workers: int = 0) -> list[str]:
    """pytest's command line for the roles' checks against the inventory's platform."""
    paths = [str(COMMON)] + [str(ROLES_DIR / r / "verify.py") for r in roles if (ROLES_DIR / r / "verify.py").is_file()]
    quiet = [arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")]
    args = [*paths, "-p", "datamesh.fixtures", *quiet, "--import-mode=importlib",
            "--rootdir", str(ROLES_DIR.parent), "-c", str(ROOT / "datamesh" / "verify.ini"),
            "--datamesh-inventory", str(inventory.path), "--datamesh-roles", ",".join(roles),
            "-p", "testinfra.plugin", "--hosts", testinfra_spec(inventory["hosts"]["nodeports"]), "-q", "--tb=no", "-rN"]
    if keyword:
        args += ["-k", keyword]
    if junit:
        args += ["--junitxml", junit, "-o", "junit_family=xunit2"]
    if workers > 1:
        args += ["-p", "xdist.plugin", "-n", str(workers), "--dist", "load"]
    return args


@dataclass
class Collector:
    """A pytest plugin object: one Check per test from its reports (in xdist's controller too)."""

    on_check: object = None
    checks: dict[str, Check] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # node ids as collected: the table's order

    def pytest_collection_finish(self, session) -> None:
        self.order = self.order or [item.nodeid for item in session.items]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        self.order = self.order or list(ids)

    def results(self) -> list[Check]:
        rank = {nodeid: i for i, nodeid in enumerate(self.order)}
        return [self.checks[n] for n in sorted(self.checks, key=lambda n: rank.get(n, len(rank)))]

    def pytest_runtest_logreport(self, report) -> None:
        props = dict(report.user_properties)
        component = props.get("component", "?")
        check = self.checks.setdefault(report.nodeid, Check(component, check_name(report.nodeid, component), "ok"))
        check.seconds += report.duration
        if report.failed and check.status != "failed":
            check.status, check.message, check.next = "failed", props.get("message", ""), props.get("next", "")
        elif report.skipped and check.status == "ok":
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            check.status, check.message = "skipped", reason.removeprefix("Skipped: ")
        if report.when == "teardown" and callable(self.on_check):
            self.on_check(check)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            from datamesh.fixtures import file_component

            component = file_component(Path(report.nodeid.split("::")[0]))
            text = str(report.longrepr).strip().splitlines()
            self.checks[report.nodeid] = Check(component, f"load {report.nodeid}", "failed",
                                               message=text[-1] if text else "the file could not be collected",
                                               next=f"fix {report.nodeid}: it is part of datamesh")


def run(inventory: Inventory, roles: list[str], *, keyword: str | None = None, junit: str | None = None,
        workers: int = 0, on_check=None) -> list[Check]:
    """Run the roles' checks and return one Check per test, in the order they were collected."""
    collector = Collector(on_check)
    workers = workers or min(4, os.cpu_count() or 1)
    args = pytest_args(inventory, roles, keyword=keyword, junit=junit, workers=workers)
    output = io.StringIO()
    for path in (Path(a) for a in args if a.endswith(".py")):  # pytest's importlib mode reuses a module by its
        sys.modules.pop(".".join(path.relative_to(ROLES_DIR.parent).with_suffix("").parts), None)  # name: load anew
    autoload = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugins named here, not whatever is installed
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = pytest.main(args, plugins=[collector])
    finally:
        if autoload is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = autoload
    if code not in (0, 1, 5) and not collector.checks:  # 5: nothing selected (-k); else pytest itself failed
        tail = " ".join(output.getvalue().strip().splitlines()[-3:])
        raise DatameshError(f"the checks could not run (pytest exit code {int(code)}): {tail}")
    return collector.results()


def components(checks: list[Check], order: list[str]) -> list[str]:
    """The components of the checks, in playbook order (then any other, as they came)."""
    found = dict.fromkeys(c.component for c in checks)
    return [name for name in order if name in found] + [name for name in found if name not in order]


def table(checks: list[Check], order: list[str], reporter: Reporter) -> None:
    """One block per component: each check with its result and seconds; a failure's sentence and next step under it."""
    width = max((len(c.name) for c in checks), default=20)
    for component in components(checks, order):
        reporter.line(f"\n{component}")
        for check in (c for c in checks if c.component == component):
            mark = {"ok": "ok", "failed": "FAILED", "skipped": "skipped"}[check.status]
            reporter.line(f"  {check.name:<{width}}  {mark:<7} {check.seconds:6.2f} s")
            if check.status == "failed":
                reporter.line(f"      {check.message}")
                reporter.line(f"      next: {check.next}")
            elif check.status == "skipped":
                reporter.line(f"      ({check.message})")


def totals(checks: list[Check]) -> dict[str, int]:
    """Counts in the shape of `up`'s recap totals (checks change nothing: changed is always 0)."""
    counts = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
    for check in checks:
        counts[check.status] += 1
    return counts


def summary(checks: list[Check], seconds: float) -> str:
    counts = totals(checks)
    return f"checks: ok={counts['ok']}  failed={counts['failed']}  skipped={counts['skipped']}  ({seconds:.1f}s)"


def write_json(checks: list[Check], order: list[str], path: Path, seconds: float) -> None:
    """The shape of `up`'s --report-json: totals, then one entry per role with its error and checks."""
    entries = []
    for component in components(checks, order):
        mine = [c for c in checks if c.component == component]
        failed = next((c for c in mine if c.status == "failed"), None)
        entries.append({"name": component, "error": f"{failed.name}: {failed.message}" if failed else None,
                        "checks": [c.to_json() for c in mine]})
    document = {"totals": totals(checks), "roles": entries, "seconds": round(seconds, 3)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def verify(inventory: Inventory, selected: list[Role], reporter: Reporter, *, keyword: str | None = None,
           junit: str | None = None, report_json: str | None = None, workers: int = 0) -> list[Check]:
    """`invoke verify`: every selected role's checks, a line per check as it finishes, then the table."""
    from datamesh.playbook import connect  # the API must answer before any check is worth running

    started = time.monotonic()
    connect(inventory, reporter)
    reporter.line(f"inventory: {inventory.path} | NodePorts from {inventory['hosts']['nodeports'].split('?')[0]} "
                  f"at {inventory['hosts']['address']} | roles: {', '.join(r.name for r in selected)}")
    order = [r.name for r in selected]
    done: list[Check] = []

    def finished(check: Check) -> None:
        done.append(check)
        failed = sum(1 for c in done if c.status == "failed")
        reporter.progress_line(f"checks: {len(done)} done, {failed} failed; last: {check.component}: {check.name}"[:100])

    checks = run(inventory, order, keyword=keyword, junit=junit, workers=workers, on_check=finished)
    reporter.progress_line("")
    if not checks:
        raise DatameshError(f"no check matched -k {keyword!r}; see the names `invoke verify` prints." if keyword
                            else "no check was collected for the selected roles.")
    table(checks, order, reporter)
    seconds = time.monotonic() - started
    reporter.line("\n" + summary(checks, seconds))
    if report_json:
        write_json(checks, order, Path(report_json), seconds)
    return checks
