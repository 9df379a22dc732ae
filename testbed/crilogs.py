"""Container logs for KWOK's fake pods: copies of the native programs' logs in CRI format.

KWOK serves `kubectl logs` from a file it reads with the kubelet's CRI log reader, which accepts
only CRI lines (`<RFC 3339 nano time> stdout F <text>`). The native programs write plain text, so
each copy here grows by the complete new lines of its source (a partial last line waits, unless
it outgrows MAX_PENDING: then it goes as a partial `P` record, as a runtime splits long lines).
Read offsets are kept in a JSON file, so a restarted loop continues where it stopped.

Differences from a container runtime: the time of each line is when it was copied (within the
loop's half second), every line counts as stdout, and a copy starts at the source's last
`==== <time> <command>` header (testbed/processes.py writes one per start), as a container's log
starts with its process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

MAX_PENDING = 64 * 1024
CHUNK = 1024 * 1024
RUN_HEADER = b"\n==== "


def cri_time(t: float) -> str:
    """RFC 3339 with nanoseconds in UTC, as CRI log lines carry it."""
    seconds = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((t - seconds) * 1e9):09d}Z"


def cri_lines(data: bytes, stamp: str, stream: str = "stdout") -> tuple[bytes, int]:
    """(CRI records of the complete lines of `data`, how many bytes of `data` they used)."""
    prefix = f"{stamp} {stream} ".encode()
    end = data.rfind(b"\n") + 1
    if not end:
        return (prefix + b"P " + data + b"\n", len(data)) if len(data) >= MAX_PENDING else (b"", 0)
    return b"".join(prefix + b"F " + line + b"\n" for line in data[:end - 1].split(b"\n")), end


def note(text: str, t: float) -> bytes:
    """A one-line log saying why a pod has no program behind it."""
    return cri_lines(text.encode() + b"\n", cri_time(t))[0]


def run_start(source: Path) -> int:
    """Where the last run of the source's program starts (its header line), 0 without one."""
    data = source.read_bytes()
    at = data.rfind(RUN_HEADER)
    return at + 1 if at >= 0 else 0


def sync(files: dict[Path, tuple[str, str]], root: Path) -> None:
    """Bring each CRI file (under `root`) up to date: ("copy", source log) grows by the source's
    new lines, ("note", text) is written once. Log files under `root` not named are removed."""
    offsets_file = root / "offsets.json"
    try:
        offsets = json.loads(offsets_file.read_text())
    except (OSError, ValueError):
        offsets = {}
    before = json.dumps(offsets, sort_keys=True)
    for path, (kind, what) in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "note":
            if not path.exists():
                path.write_bytes(note(what, time.time()))
            continue
        source = Path(what)
        try:
            st = source.stat()
        except OSError:
            continue
        rec = offsets.get(str(path))
        if not rec or rec["source"] != what or rec["inode"] != st.st_ino or st.st_size < rec["offset"]:
            rec = offsets[str(path)] = {"source": what, "inode": st.st_ino, "offset": run_start(source)}
        _append(source, path, rec)
    for stale in set(root.rglob("*.log")) - set(files):
        stale.unlink(missing_ok=True)
        offsets.pop(str(stale), None)
    if json.dumps(offsets, sort_keys=True) != before:
        tmp = offsets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(offsets, indent=1))
        os.replace(tmp, offsets_file)


def _append(source: Path, target: Path, rec: dict) -> None:
    with open(source, "rb") as src, open(target, "ab") as out:
        while True:
            src.seek(rec["offset"])
            data = src.read(CHUNK)
            records, used = cri_lines(data, cri_time(time.time()))
            if not used:
                return
            out.write(records)
            out.flush()
            rec["offset"] += used
