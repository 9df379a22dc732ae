"""Live progress on a terminal (rich): one row per component (a role of `up` and `down`, a step of
`seed`) with its phase, the time since it started and its last event, redrawn in place under the
lines the plain Reporter prints. Off a terminal, or with --plain, the plain Reporter runs alone.

Phases: applying (deleting for down, running for seed), pulling image, starting, waiting for readiness, verifying, loading (seed), done,
failed, skipped.
A pod the scheduler has not placed yet shows its reason in yellow while timeouts.ready lasts.
"""

from __future__ import annotations

import atexit
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from datamesh.manifests import COMPONENT, label
from datamesh.report import Reporter, rows_done
from datamesh.role import ObjectResult, Result

COLOURS = {"done": "green", "failed": "bold red", "skipped": "dim", "pulling image": "cyan"}


@dataclass
class Row:
    phase: str
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    event: str = ""
    warning: bool = False


class LiveReporter(Reporter):
    """The plain Reporter's lines, plus the rows kept live at the bottom of the terminal."""

    def __init__(self, stream: TextIO | None = None, first_phase: str = "applying"):
        super().__init__(stream)
        self.first_phase = first_phase  # what a component does first: applying (up), deleting (down), running (seed)
        from rich.console import Console
        from rich.live import Live

        self.rows: dict[str, Row] = {}
        self.current = ""
        self.console = Console(file=self.stream, highlight=False)
        self.display = Live(console=self.console, get_renderable=self.table, refresh_per_second=4, transient=False)
        self.shown = False  # the rows start with the first component, after any question on the terminal

    def start(self) -> None:
        if not self.shown:
            self.shown = True
            self.display.start()
            atexit.register(self.close)

    def line(self, text: str) -> None:
        self.console.print(text, markup=False, soft_wrap=True)

    def close(self) -> None:
        if self.shown:
            self.display.stop()

    def table(self):
        from rich.table import Table

        grid = Table(box=None, show_header=bool(self.rows), padding=(0, 2, 0, 0), expand=True)
        for title, width in (("COMPONENT", 16), ("PHASE", 21), ("TIME", 5)):
            grid.add_column(title, no_wrap=True, min_width=width)
        grid.add_column("LAST EVENT", overflow="ellipsis", no_wrap=True, ratio=1)
        now = time.monotonic()
        for name, row in self.rows.items():
            colour = "yellow" if row.warning else COLOURS.get(row.phase, "")
            seconds = (row.ended or now) - row.started
            grid.add_row(name, f"[{colour}]{row.phase}[/]" if colour else row.phase, f"{seconds:.0f}s", row.event)
        return grid

    def set(self, name: str, phase: str | None = None, event: str | None = None, warning: bool = False) -> None:
        self.start()
        row = self.rows.setdefault(name, Row(phase or self.first_phase))
        if phase:
            row.phase = phase
            row.ended = time.monotonic() if phase in ("done", "failed", "skipped") else None
        if event is not None:
            row.event, row.warning = event, warning

    # -- the Reporter's hooks ------------------------------------------------------------------

    def role_start(self, name: str) -> None:
        self.current = name
        self.set(name, self.first_phase)
        super().role_start(name)

    def role_skipped(self, name: str) -> None:
        self.set(name, "skipped", "an earlier one failed")
        super().role_skipped(name)

    def role_failed(self, name: str, error: str) -> None:
        self.set(name, "failed", error.split(";")[0])
        super().role_failed(name, error)

    def phase(self, name: str, phase: str) -> None:
        self.set(name, phase, "")
        super().phase(name, phase)

    def verifying(self, name: str) -> None:
        self.set(name, "verifying", "")

    def object_done(self, result: ObjectResult) -> None:
        if self.current:
            self.set(self.current, event=f"{result.status}: {result.ref}")
        super().object_done(result)

    def waiting(self, obj: dict, why: str) -> None:
        name = label(obj, COMPONENT) or self.current
        phase = "pulling image" if why.startswith("pulling") else "starting" if "ready" in why else "waiting for readiness"
        self.set(name, phase, f"{obj['kind']} {obj['metadata']['name']}: {why}", warning="warning:" in why)
        super().waiting(obj, why)

    def progress(self, what: str, done: int, total: int, seconds: float, final: bool = False) -> None:
        if self.current:
            self.set(self.current, "loading" if not final else None, f"{what}: {done:,}/{total:,} rows")
        if final:
            self.line(rows_done(what, done, seconds))

    def progress_line(self, text: str) -> None:
        if self.current and text:
            self.set(self.current, event=text.strip())

    def recap(self, results: list[Result]) -> None:
        for result in results:
            if result.role in self.rows and self.rows[result.role].phase not in ("failed", "skipped"):
                self.set(result.role, "done", f"{result.count('changed')} changed, {result.count('ok')} ok")
        self.close()
        super().recap(results)


def reporter(plain: bool = False, first_phase: str = "applying") -> Reporter:
    """The live reporter on a terminal, else (or with `plain`) the plain one."""
    return Reporter() if plain or not sys.stdout.isatty() else LiveReporter(first_phase=first_phase)
