"""A pod's files, env and command, for a native run: where each pod path lives in the run folder.

Each config section (testbed/rendered.py) carries `paths`, the table that says where a path the pod
sees lives in the service's run folder, longest matching prefix first. Files are placed, env
values and command arguments translated with it, and a mounted file no entry covers is refused,
so a new mount is never silently dropped.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from testbed.common import TestbedError, run


def native_path(pod_path: str, paths: dict[str, str], base: Path) -> Path:
    """Where a path the pod sees lives in the run folder: the config's `paths` table (pod path ->
    folder under `base`), longest matching prefix first. A path no entry covers is refused."""
    best = ""
    for pod in paths:
        p = pod.rstrip("/")
        if (pod_path == p or pod_path.startswith(p + "/")) and len(p) > len(best):
            best = p
    if not best:
        raise TestbedError(f"the pod path {pod_path} has no entry in the config's paths table (pod path -> run "
                           f"folder): add one to the service's table in testbed/rendered.py")
    rel = paths.get(best, paths.get(best + "/"))
    rest = pod_path[len(best):].lstrip("/")
    target = (base / rel / rest) if rest else base / rel
    if not Path(os.path.normpath(target)).is_relative_to(os.path.normpath(base)):
        raise TestbedError(f"the pod path {pod_path} maps to {target}, outside {base}")
    return target


def translate_text(text: str, paths: dict[str, str], base: Path) -> str:
    """Every pod path of the table that appears as a path in `text` replaced by its run-folder path."""
    if not paths:
        return text
    keys = sorted((p.rstrip("/") for p in paths), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w.-])")
    return pattern.sub(lambda m: str(native_path(m.group(1), paths, base)), text)


def place_config(section: dict, base: Path) -> dict[str, Path]:
    """Write the section's files where its `paths` table puts them (the folders they live in are
    emptied first, so a file the render no longer has does not linger) and create its other
    volumes' folders. Returns pod path -> written file."""
    paths = section.get("paths") or {}
    files: dict[str, str] = section.get("files") or {}
    targets = {pod: native_path(pod, paths, base) for pod in files}
    for target in targets.values():
        top = base / target.relative_to(base).parts[0]
        if top.is_dir() and not top.is_symlink() and top != target:
            shutil.rmtree(top)
    for pod, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[pod])
    for pod in section.get("volumes") or {}:
        target = native_path(pod, paths, base)
        if not target.exists():
            target.mkdir(parents=True, exist_ok=True)
    return targets


def native_env(section: dict, base: Path) -> dict[str, str]:
    """The section's resolved environment with pod paths in values translated to the run folder."""
    paths = section.get("paths") or {}
    return {k: translate_text(str(v), paths, base) for k, v in (section.get("env") or {}).items()}


def native_command(container: dict, base: Path) -> list[str]:
    """The container's command and args with pod paths translated to the run folder."""
    paths = container.get("paths") or {}
    return [translate_text(a, paths, base) for a in container.get("command", []) + container.get("args", [])]


def base_env(extra: dict | None = None, java: Path | None = None) -> dict[str, str]:
    """A clean environment for a native program (PATH, HOME, a UTF-8 locale, UTC), plus `extra`."""
    path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "TZ": "UTC"}
    if java:
        env["JAVA_HOME"] = str(java)
        env["PATH"] = f"{java}/bin:{path}"
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def with_flag(args: list[str], flag: str, value: str) -> list[str]:
    """args with `flag=...` (or `flag ...`) given `value`."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a.startswith(flag + "="):
            out.append(f"{flag}={value}")
        elif a == flag and i + 1 < len(args):
            out += [flag, value]
            i += 1
        else:
            out.append(a)
        i += 1
    return out


def run_job(job: dict, base: Path, command: list[str], first_on_path: Path, what: str, timeout: float) -> str:
    """A Job's pod, natively: a fresh `base` with its files, its env with `first_on_path` first on
    PATH, then `command`. Its output goes to base/job.log and is returned; a failure is the Job's
    failure, raised naming `what` with the output's end."""
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    place_config(job, base)
    env = base_env(native_env(job, base))
    env["PATH"] = f"{first_on_path}{os.pathsep}{env['PATH']}"
    out = run(command, env=env, cwd=base, capture=True, check=False, timeout=timeout)
    (base / "job.log").write_text(out.stdout or "")
    if out.returncode != 0:
        raise TestbedError(f"{what} failed (exit code {out.returncode}; {base / 'job.log'}):\n{(out.stdout or '')[-3000:]}")
    return out.stdout or ""
