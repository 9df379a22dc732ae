"""dbt from the user's machine: the project in dbt_projects/ run against the platform's Trino.

`invoke seed` runs dbt as a child process (its own interpreter, ended with the run) with the
project's profiles.yml pointed at a port-forward to Trino through TRINO_HOST and TRINO_PORT, and
logged in as Trino's admin (TRINO_PASSWORD, TRINO_CA), the variables a JupyterHub server sets for
its in-cluster address. dbt's JSON log lines are
streamed through the reporter as they come; its outcome is read from run_results.json and the
manifest, so a failure names the model or the test and its column. Work files (target/, logs/)
live in .datamesh/dbt/<inventory>/, never in the project folder users get as ~/dbt_projects.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from datamesh.errors import DatameshError
from datamesh.report import Reporter
from datamesh.trino import Access

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "dbt_projects"
RUNNER = "import sys; from dbt.cli.main import cli; sys.argv[0] = 'dbt'; sys.exit(cli())"
SHOWN = 3  # failures named in the error sentence; the rest are counted


@dataclass
class Outcome:
    """What one dbt command did: each node's result, and the manifest that describes the nodes."""

    results: list[dict]
    nodes: dict[str, dict]
    warnings: list[str]

    def ran(self, resource_type: str) -> list[dict]:
        return [r for r in self.results if self.nodes.get(r["unique_id"], {}).get("resource_type") == resource_type]


def workdir(inventory_name: str) -> Path:
    return ROOT / ".datamesh" / "dbt" / inventory_name


def project_vars(vars: dict) -> dict:
    """The dbt vars the project reads, from the inventory."""
    return {"lake_bucket": vars["minio"]["bucket"]}


def command(args: list[str], work: Path, dbt_vars: dict, project: Path = PROJECT) -> list[str]:
    return [sys.executable, "-c", RUNNER, *args, "--project-dir", str(project), "--profiles-dir", str(project),
            "--target-path", str(work / "target"), "--log-path", str(work / "logs"), "--log-format", "json",
            "--no-use-colors",
            "--vars", json.dumps(dbt_vars, sort_keys=True)]


def environment(host: str, port: int, login: Access, work: Path) -> dict[str, str]:
    """dbt's environment: profiles.yml's TRINO_* pointed at the port-forward and `login` (its CA in a work file)."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("DBT_") or k.startswith("TRINO_"))}
    env.update({"TRINO_HOST": host, "TRINO_PORT": str(port), "TRINO_USER": login.user,
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PYTHONUNBUFFERED": "1"})
    if login.password is None:
        env["TRINO_METHOD"] = "none"
    else:
        ca = work / "trino-ca.crt"
        ca.write_text(login.ca or "")
        env.update({"TRINO_METHOD": "ldap", "TRINO_PASSWORD": login.password, "TRINO_CA": str(ca)})
        # requests prefers these to the session's CA, which is how dbt-trino passes `cert`
        # (psf/requests#3829, #4650); dbt talks to nothing but Trino through the port-forward
        env.pop("CURL_CA_BUNDLE", None)
        env["REQUESTS_CA_BUNDLE"] = str(ca)
    return env


def run(args: list[str], *, endpoint: tuple[str, int], login: Access, work: Path, dbt_vars: dict, reporter: Reporter,
        project: Path = PROJECT) -> Outcome:
    """Run `dbt <args>`, stream its log lines, and return its outcome; a failure raises one sentence."""
    if importlib.util.find_spec("dbt") is None or importlib.util.find_spec("dbt.adapters.trino") is None:
        raise DatameshError(f"dbt with its Trino adapter is not installed for {sys.executable}: "
                            "run `pip install -r requirements.txt` in this environment.")
    work.mkdir(parents=True, exist_ok=True)
    results_file = work / "target" / "run_results.json"
    results_file.unlink(missing_ok=True)
    errors_file = work / "stderr.log"
    warnings: list[str] = []
    last_errors: list[str] = []
    with open(errors_file, "wb") as errors:
        try:
            proc = subprocess.Popen(command(args, work, dbt_vars, project), stdout=subprocess.PIPE, stderr=errors,
                                    env=environment(*endpoint, login, work), cwd=work, text=True, bufsize=1)
        except OSError as exc:
            raise DatameshError(f"dbt could not start ({exc}); install the requirements: "
                                "pip install -r requirements.txt.") from exc
        try:
            for line in proc.stdout:
                level, text = log_line(line)
                if not text:
                    continue
                if level in ("warn", "warning"):
                    warnings.append(text)
                    reporter.warning(f"dbt: {text}")
                elif level == "error":
                    last_errors = (last_errors + [text])[-5:]
                    reporter.line(f"  dbt: {text}")
                elif level == "info":
                    reporter.line(f"  dbt: {text}")
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    outcome = Outcome(read_json(results_file).get("results", []),
                      read_json(work / "target" / "manifest.json").get("nodes", {}), warnings)
    failed = failures(outcome)
    if failed or code != 0:
        raise DatameshError(failure_sentence(args[0], failed, last_errors, errors_file, work, code))
    return outcome


QUIET = {"LogStartLine", "LogTestResult"}  # a line per node starting, and per passing test: shown as counts
# what dbt warns of when a state-based selection finds nothing changed: the point of selecting so
NOTHING_CHANGED = {"NoNodesForSelectionCriteria", "NothingToDo"}


def log_line(line: str) -> tuple[str, str]:
    """(level, message) of one line of dbt's JSON log; other lines are passed on as info."""
    line = line.rstrip("\n")
    try:
        event = json.loads(line)
        info = event["info"]
        level = info.get("level", "info")
        if info.get("name") in QUIET and level == "info" and (event.get("data") or {}).get("status") in (None, "pass"):
            return "debug", ""
        if info.get("name") in NOTHING_CHANGED:
            return "debug", ""
        return level, info.get("msg", "").strip()
    except (ValueError, KeyError, TypeError, AttributeError):
        return "info", line.strip()


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def failures(outcome: Outcome) -> list[str]:
    """One phrase per failed node: `model X (catalog.schema.table): why`, `test not_null on X.col: why`."""
    out = []
    for result in outcome.results:
        if result.get("status") not in ("error", "fail", "runtime error"):
            continue
        node = outcome.nodes.get(result["unique_id"], {})
        why = first_line(result.get("message") or result.get("status"))
        out.append(f"{describe(node, result['unique_id'], outcome.nodes)}: {why}")
    return out


def describe(node: dict, unique_id: str, nodes: dict[str, dict]) -> str:
    kind = node.get("resource_type") or unique_id.split(".", 1)[0]
    if kind == "test":
        test = (node.get("test_metadata") or {}).get("name") or node.get("name", unique_id)
        tested = node.get("attached_node") or next(iter((node.get("depends_on") or {}).get("nodes") or []), "")
        model = nodes.get(tested, {}).get("name", "")
        column = node.get("column_name")
        on = f"{model}.{column}" if model and column else model or column or ""
        return f"test {test}{' on ' + on if on else ''}"
    relation = (node.get("relation_name") or "").replace('"', "")
    return f"{kind} {node.get('name', unique_id)}{f' ({relation})' if relation else ''}"


def first_line(text: str) -> str:
    """The part of a dbt message that says what went wrong: the database's own words where given,
    and the rows of a table (a contract's mismatched columns) as `column: definition vs contract`."""
    lines = [l.strip() for l in str(text).splitlines()
             if l.strip() and not l.strip().startswith(("compiled code at", "Database Error in", "Runtime Error in",
                                                        "Compilation Error in"))]
    prose = [l for l in lines if not l.startswith("|")]
    rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines if l.startswith("|")]
    said = re.search(r'message="((?:[^"\\]|\\.)*)"', " ".join(prose))
    found = said.group(1) if said else (prose[0] if rows and prose else " ".join(prose[:2]))
    if len(rows) > 1:  # a header row, then the mismatches
        found += " (" + "; ".join(f"{r[0]}: {' vs contract '.join(r[1:3])}" for r in rows[1:] if len(r) >= 3
                                  and not set(r[0]) <= {"-", ":"}) + ")"
    return (found[:400] + "...") if len(found) > 400 else found or "failed"


def failure_sentence(verb: str, failed: list[str], last_errors: list[str], errors_file: Path, work: Path,
                     code: int) -> str:
    log = work / "logs" / "dbt.log"
    if failed:
        more = f"; and {len(failed) - SHOWN} more" if len(failed) > SHOWN else ""
        return f"dbt {verb} failed: {'; '.join(failed[:SHOWN])}{more}. Fix the project in dbt_projects/ " \
               f"and re-run `invoke seed --only dbt` (details: {log})."
    detail = first_line(last_errors[-1]) if last_errors else tail(errors_file)
    return f"dbt {verb} failed (exit code {code}): {detail} (details: {log})."


def tail(path: Path) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "no output"
    return first_line(lines[-1]) if lines else "no output"
