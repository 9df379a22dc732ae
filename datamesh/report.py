"""Progress while a playbook runs, the Ansible-style recap after it, and the JSON report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

from datamesh.role import STATUSES, ObjectResult, Result


class Reporter:
    """Prints one line per object as it settles and a line per wait, then the recap."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.requests: dict[str, int] = {}
        self._last_wait: dict[str, str] = {}

    def line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def warning(self, text: str) -> None:
        self.line(f"warning: {text}")

    def role_start(self, name: str) -> None:
        self.line(f"\nROLE [{name}] " + "*" * max(3, 60 - len(name)))

    def role_skipped(self, name: str) -> None:
        self.line(f"\nROLE [{name}] skipped: an earlier role failed")

    def role_failed(self, name: str, error: str) -> None:
        self.line(f"  failed:  {error}")

    def phase(self, name: str, phase: str) -> None:
        """A component entering a phase (waiting for readiness, verifying)."""
        self.line(f"  {name}: {phase}")

    def verifying(self, name: str) -> None:
        """A component's checks begin; their result gets its own line, so plain output says nothing here."""

    def object_done(self, result: ObjectResult) -> None:
        action = f" ({result.action}d)" if result.action in ("create", "update") else ""
        self.line(f"  {result.status + ':':9}{result.ref}{action}")

    def waiting(self, obj: dict, why: str) -> None:
        """A line when what an object waits for changes: `(0/1 ready)`, `(pulling IMAGE, 2m30s)`."""
        key = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
        if self._last_wait.get(key) != why:
            self._last_wait[key] = why
            self.line(f"  waiting: {key} ({why}) at {time.monotonic() - self.started:.0f}s")

    def progress(self, what: str, done: int, total: int, seconds: float, final: bool = False) -> None:
        """Rows of a load: a bar redrawn in place on a terminal; elsewhere only the final line."""
        rate = rows_rate(done, seconds)
        if final:
            end = "\r" + " " * 100 + "\r" if self.live else ""
            print(f"{end}{rows_done(what, done, seconds)}", file=self.stream, flush=True)
        elif self.live:
            filled = int(30 * done / total) if total else 30
            print(f"\r  {what[:40]:<40} [{'#' * filled:<30}] {done:,}/{total:,} {rate}", end="", file=self.stream, flush=True)

    def progress_line(self, text: str) -> None:
        """A status line redrawn in place on a terminal (an empty text clears it); nothing elsewhere."""
        if self.live:
            print("\r" + " " * 100 + "\r" + text, end="" if text else "", file=self.stream, flush=True)

    @property
    def live(self) -> bool:
        """True on a terminal, where progress is redrawn in place."""
        return hasattr(self.stream, "isatty") and self.stream.isatty()

    def recap(self, results: list[Result]) -> None:
        self.line("\nRECAP " + "*" * 60)
        width = max((len(r.role) for r in results), default=10)
        for result in results:
            counts = totals([result])
            self.line(f"{result.role:<{width}} : " + "  ".join(f"{s}={counts[s]}" for s in STATUSES))
        overall = totals(results)
        self.line(f"{'total':<{width}} : " + "  ".join(f"{s}={overall[s]}" for s in STATUSES)
                  + f"  ({time.monotonic() - self.started:.1f}s)")
        if self.requests:
            self.line("API requests: " + ", ".join(f"{verb}={n}" for verb, n in sorted(self.requests.items())))


def rows_rate(done: int, seconds: float) -> str:
    return f"{done / seconds:,.0f} rows/s" if seconds > 0 else ""


def rows_done(what: str, done: int, seconds: float) -> str:
    return f"  rows:    {what} {done:,} in {seconds:.1f}s ({rows_rate(done, seconds)})"


def totals(results: list[Result]) -> dict[str, int]:
    """Per-object counts; a failed role with no object counts one failure, a skipped role one skip."""
    counts = dict.fromkeys(STATUSES, 0)
    for result in results:
        if result.skipped:
            counts["skipped"] += 1
            continue
        for status in STATUSES:
            counts[status] += result.count(status)
        if result.failed:
            counts["failed"] += 1
    return counts


def write_json(results: list[Result], path: Path, requests: dict[str, int] | None = None) -> None:
    document = {"totals": totals(results), "roles": [r.to_json() for r in results], "requests": requests or {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
