"""Load and validate an inventory: where the platform goes and how it is sized.

`inventory/defaults.yml` holds the engine's settings and each `roles/<name>/defaults.yml` the
settings its role owns (its image, resources, volume sizes); merged, they are the schema: an
inventory file may only set keys that exist there, with a value of the same type. A setting
whose default is null takes a string (or stays null). Every error is one sentence naming the
file, the key and, where known, the line, and is raised before anything touches a cluster.
"""

from __future__ import annotations

import copy
import difflib
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes.utils.quantity import parse_quantity

from datamesh import ROOT
from datamesh.errors import DatameshError, shown

INVENTORY_DIR = ROOT / "inventory"
DEFAULTS_FILE = INVENTORY_DIR / "defaults.yml"
ROLES_DIR = ROOT / "roles"
DEFAULT_NAME = "docker-desktop"
CREDENTIAL_POLICIES = ("lab", "generate")
POD_SECURITY_LEVELS = ("restricted", "baseline")  # privileged is never enforced: it would admit anything


@dataclass
class Inventory:
    """A validated inventory: `vars` is the defaults merged with the file's settings."""

    name: str
    path: Path
    vars: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.vars[key]


def resolve_path(name_or_path: str | None) -> Path:
    """Turn `--inventory NAME|PATH` (or DATAMESH_INVENTORY, or the default) into a file path."""
    choice = name_or_path or os.environ.get("DATAMESH_INVENTORY") or DEFAULT_NAME
    looks_like_path = os.sep in choice or choice.endswith((".yml", ".yaml"))
    path = Path(choice) if looks_like_path else INVENTORY_DIR / f"{choice}.yml"
    if not path.is_file():
        known = ", ".join(available())
        raise DatameshError(
            f"inventory '{choice}' not found (looked for {path}); "
            f"pass --inventory with one of: {known}, or a path to a YAML file."
        )
    return path


def available() -> list[str]:
    return sorted(p.stem for p in INVENTORY_DIR.glob("*.yml") if p.stem != "defaults")


def load(name_or_path: str | None = None) -> Inventory:
    """Read, merge over the defaults and validate one inventory file."""
    path = resolve_path(name_or_path)
    defaults = load_defaults()
    settings, lines = _read_yaml(path)
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise DatameshError(f"{shown(path)}: the inventory must be a YAML mapping of settings, not a {_type_name(settings)}.")
    merged = _merge(defaults, settings, path, lines, prefix="")
    inventory = Inventory(name=path.stem, path=path, vars=merged, lines=lines)
    _check_rules(inventory)
    return inventory


def load_defaults() -> dict:
    """inventory/defaults.yml with every role's defaults.yml merged in; a key set twice is refused."""
    merged, _ = _read_yaml(DEFAULTS_FILE)
    for path in sorted(ROLES_DIR.glob("*/defaults.yml")):
        role_defaults, _ = _read_yaml(path)
        _merge_defaults(merged, role_defaults or {}, path, "")
    return merged


def _merge_defaults(into: dict, extra: dict, path: Path, prefix: str) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge_defaults(into[key], value, path, f"{prefix}{key}.")
        elif key in into:
            raise DatameshError(f"{shown(path)}: key '{prefix}{key}' is already defined by another defaults file; keep one owner.")
        else:
            into[key] = value


def _read_yaml(path: Path) -> tuple[Any, dict[str, int]]:
    """Parse YAML, returning the data and the line number of every dotted key."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DatameshError(f"{shown(path)}: cannot read the inventory ({exc.strerror}).") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DatameshError(f"{shown(path)}{where}: not valid YAML ({problem}); fix the indentation or quoting there.") from exc
    lines: dict[str, int] = {}
    _collect_lines(node, "", lines)
    return data, lines


def _collect_lines(node: Any, prefix: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            _collect_lines(value_node, key + ".", lines)


def _merge(defaults: Any, settings: dict, path: Path, lines: dict[str, int], prefix: str) -> dict:
    merged = copy.deepcopy(defaults)
    for key, value in settings.items():
        dotted = f"{prefix}{key}"
        where = _where(path, lines, dotted)
        if not isinstance(key, str) or key not in defaults:
            raise DatameshError(f"{where}: unknown key '{dotted}'{_suggest(key, defaults, prefix)}.")
        default = defaults[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise DatameshError(f"{where}: key '{dotted}' must be a mapping of settings, not a {_type_name(value)}.")
            merged[key] = _merge(default, value, path, lines, dotted + ".")
        else:
            merged[key] = _check_scalar(default, value, where, dotted)
    return merged


def _check_scalar(default: Any, value: Any, where: str, dotted: str) -> Any:
    if default is None:
        if value is None or isinstance(value, str):
            return value
        expected = "a string (or null)"
    elif isinstance(default, bool):
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif isinstance(default, int):
        least = 1 if dotted.startswith("timeouts.") else 0
        if isinstance(value, int) and not isinstance(value, bool) and value >= least:
            return value
        expected = "a positive whole number" if least else "a whole number, 0 or more"
    elif isinstance(default, str):
        if isinstance(value, str) and value:
            return value
        expected = "a non-empty string"
    elif isinstance(default, list):
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        expected = "a list of strings"
    else:
        raise DatameshError(f"{shown(DEFAULTS_FILE)}: key '{dotted}' has an unsupported default type {_type_name(default)}.")
    raise DatameshError(f"{where}: key '{dotted}' must be {expected}, got {_type_name(value)} {value!r}.")


def _check_rules(inventory: Inventory) -> None:
    """Rules that span keys: what the types alone cannot say."""
    v = inventory.vars
    creds = v["credentials"]
    where = _where(inventory.path, inventory.lines, "credentials.policy")
    if creds["policy"] not in CREDENTIAL_POLICIES:
        raise DatameshError(
            f"{where}: key 'credentials.policy' must be one of {', '.join(CREDENTIAL_POLICIES)}, got {creds['policy']!r}."
        )
    lab = creds["lab_passwords"]
    if creds["policy"] == "lab":
        missing = [name for name, password in lab.items() if not password]
        if missing:
            raise DatameshError(
                f"{where}: policy 'lab' needs credentials.lab_passwords for {', '.join(missing)}; "
                "set them or use policy 'generate'."
            )
    elif any(lab.values()):
        where = _where(inventory.path, inventory.lines, "credentials.lab_passwords")
        raise DatameshError(
            f"{where}: credentials.lab_passwords are only used with policy 'lab'; "
            "remove them, since this inventory generates its passwords."
        )
    if creds["users"]["postgres_reader"] == creds["users"]["postgres"]:
        where = _where(inventory.path, inventory.lines, "credentials.users.postgres_reader")
        raise DatameshError(
            f"{where}: key 'credentials.users.postgres_reader' must differ from credentials.users.postgres "
            f"(both {creds['users']['postgres']!r}): the read-only login is made NOSUPERUSER, which would demote "
            "the databases' owner; choose another name."
        )
    target = v["hosts"]["nodeports"]
    if target != "local" and not (target.startswith("ssh://") and urllib.parse.urlsplit(target).hostname):
        where = _where(inventory.path, inventory.lines, "hosts.nodeports")
        raise DatameshError(f"{where}: key 'hosts.nodeports' must be 'local' or 'ssh://user@host[:port]', got {target!r}.")
    if not 0 <= v["verify"]["workers"] <= 32:
        where = _where(inventory.path, inventory.lines, "verify.workers")
        raise DatameshError(f"{where}: key 'verify.workers' must be from 0 (one per CPU) to 32, got {v['verify']['workers']}.")
    level = v["security"]["pod_security"]
    if level not in POD_SECURITY_LEVELS:
        where = _where(inventory.path, inventory.lines, "security.pod_security")
        raise DatameshError(f"{where}: key 'security.pod_security' must be one of {', '.join(POD_SECURITY_LEVELS)} "
                            f"(the Pod Security level enforced on every namespace), got {level!r}.")
    ports = v["nodeports"]
    seen: dict[int, str] = {}
    for component, port in ports.items():
        if not 30000 <= port <= 32767:
            where = _where(inventory.path, inventory.lines, f"nodeports.{component}")
            raise DatameshError(f"{where}: key 'nodeports.{component}' must be in Kubernetes' NodePort range 30000-32767, got {port}.")
        if port in seen:
            where = _where(inventory.path, inventory.lines, f"nodeports.{component}")
            raise DatameshError(f"{where}: NodePort {port} is given to both {seen[port]} and {component}; give each its own port.")
        seen[port] = component
    quantities = [(f"storage.{k}", q) for k, q in v["storage"].items() if k != "class"]
    quantities += [
        (f"resources.{component}.{kind}.{name}", q)
        for component, spec in v["resources"].items()
        for kind, amounts in spec.items()
        for name, q in amounts.items()
    ]
    for dotted, quantity in quantities:
        try:
            parse_quantity(quantity)
        except ValueError:
            where = _where(inventory.path, inventory.lines, dotted)
            raise DatameshError(
                f"{where}: key '{dotted}' must be a Kubernetes quantity such as 512Mi, 5Gi or 500m, got {quantity!r}."
            ) from None
    for component, image in v["images"].items():
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            where = _where(inventory.path, inventory.lines, f"images.{component}")
            raise DatameshError(f"{where}: image for '{component}' must be pinned to an exact tag, got {image!r}.")


def _suggest(key: Any, defaults: dict, prefix: str) -> str:
    close = difflib.get_close_matches(str(key), [str(k) for k in defaults], n=1)
    if close:
        return f" (did you mean '{prefix}{close[0]}'?)"
    return f"; known keys here: {', '.join(sorted(str(k) for k in defaults))}"


def _where(path: Path, lines: dict[str, int], dotted: str) -> str:
    line = lines.get(dotted)
    return f"{shown(path)} line {line}" if line else shown(path)


def _type_name(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
