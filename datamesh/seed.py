"""`invoke seed`: fill a converged platform with the sample data set, step by step.

The steps are the seed.py modules of the roles in `playbooks/seed.yml` (postgres: both source
databases by COPY; minio: the data lake's raw files; hive-metastore: the Hive tables over them),
each given a Context and returning one ObjectResult per table or file it owns, so the recap and
--report-json have the shape of `up`'s. Before any step writes, every component the selected
steps use must exist and be Ready, else one sentence names it and `invoke up`.

A step module defines:
    STEP = "postgres"                  # its name for --only
    NEEDS = ["postgres"]               # the roles whose workloads must be Ready
    def seed(ctx: Context) -> list[ObjectResult]   # raises DatameshError with one sentence
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Callable

from datamesh import playbook as playbooks, role as roles
from datamesh.endpoints import Endpoints
from datamesh.errors import DatameshError
from datamesh.inventory import Inventory
from datamesh.report import Reporter
from datamesh.role import Result, load_module
from datamesh.wait import PREDICATES, readiness

if TYPE_CHECKING:  # pyarrow loads only when a step runs
    from datamesh.sampledata import Dataset


@dataclass
class Progress:
    """Rows of one table as they go: a live line on a terminal, one line when done otherwise."""

    reporter: Reporter
    what: str
    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, rows: int) -> None:
        self.done += rows
        self.reporter.progress(self.what, self.done, self.total, time.monotonic() - self.started)

    def finish(self) -> None:
        self.reporter.progress(self.what, self.done, self.total, time.monotonic() - self.started, final=True)


@dataclass
class Context:
    """What a step gets: the data set, the way into the cluster's services, and the run's choices."""

    data: Dataset
    reach: Endpoints
    reporter: Reporter
    reset: bool = False

    @property
    def inventory(self) -> Inventory:
        return self.reach.inventory

    def progress(self, what: str, total: int) -> Progress:
        return Progress(self.reporter, what, total)


@dataclass
class Step:
    name: str
    role: str
    module: ModuleType

    @property
    def needs(self) -> list[str]:
        return list(getattr(self.module, "NEEDS", [self.role]))


def steps(only: list[str] | None = None) -> list[Step]:
    """The seed playbook's steps, in order; --only picks some (an unknown name is refused)."""
    found = []
    for role in playbooks.role_names("seed"):
        module = load_module(role, "seed")
        found.append(Step(getattr(module, "STEP", role), role, module))
    names = [s.name for s in found]
    unknown = [n for n in only or [] if n not in names]
    if unknown:
        raise DatameshError(f"--only names {', '.join(unknown)}; seed's steps are: {', '.join(names)}.")
    return [s for s in found if not only or s.name in only]


def preflight(ctx: Context, selected: list[Step]) -> None:
    """Every workload the selected steps use exists and is Ready; else one sentence, nothing written."""
    inventory, cluster = ctx.inventory, ctx.reach.cluster
    for role_name in dict.fromkeys(r for s in selected for r in s.needs):
        for obj in roles.load(role_name).render(inventory.vars):
            if obj["kind"] not in PREDICATES or obj["kind"] == "Job":
                continue
            live = cluster.get(obj)
            ready, why = (False, "missing") if live is None else readiness(cluster, obj, live)
            if not ready:
                meta = obj["metadata"]
                raise DatameshError(f"seed needs {role_name}, and {obj['kind']} {meta['namespace']}/{meta['name']} is "
                                    f"{'missing' if live is None else 'not ready (' + why + ')'}: run `invoke up` first.")


def run(ctx: Context, selected: list[Step]) -> list[Result]:
    """Run the selected steps in order; after a failed step the rest are skipped."""
    preflight(ctx, selected)
    results: list[Result] = []
    failed = False
    for step in selected:
        if failed:
            ctx.reporter.role_skipped(step.name)
            results.append(Result(step.name, skipped=True))
            continue
        ctx.reporter.role_start(step.name)
        result = Result(step.name)
        try:
            for item in step.module.seed(ctx):
                result.objects.append(item)
                ctx.reporter.object_done(item)
        except DatameshError as error:
            result.error = str(error)
            ctx.reporter.role_failed(step.name, result.error)
            failed = True
        results.append(result)
    return results



def seed(inventory: Inventory, reporter: Reporter, *, data: Dataset, only: list[str], reset: bool,
         yes: bool, lock_timeout: float | None = None) -> list[Result]:
    """The whole of `invoke seed`: steps chosen and --reset confirmed before anything connects."""
    selected = steps(only)
    if reset and not yes:
        ask = input if sys.stdin.isatty() and sys.stdout.isatty() else None
        if ask is None:
            raise DatameshError("--reset replaces every row and file of the sample tables, yours too, and needs a "
                                "confirmation: run it on a terminal, or add --yes.")
        confirm_reset(selected, ask)
    cluster = playbooks.connect(inventory, reporter)
    reporter.line(f"data set: {data.fingerprint} | steps: {', '.join(s.name for s in selected)}")
    try:
        with playbooks.locked(cluster, inventory, "seed", lock_timeout, reporter):
            return run(Context(data, Endpoints(cluster, inventory), reporter, reset), selected)
    finally:
        reporter.requests = dict(cluster.requests)


def confirm_reset(selected: list[Step], ask: Callable[[str], str]) -> None:
    names = ", ".join(s.name for s in selected)
    answer = ask(f"--reset empties and reloads (or rebuilds) what these steps own: {names}, including rows you "
                 "added.\nType 'reset' to go ahead: ")
    if answer.strip() != "reset":
        raise DatameshError("reset not confirmed, nothing was changed; type 'reset' at the prompt or pass --yes.")
