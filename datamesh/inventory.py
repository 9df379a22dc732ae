"""Load and validate an inventory: where the platform goes and how it is sized.

`inventory/defaults.yml` holds the engine's settings and each `roles/<name>/defaults.yml` the
settings its role owns (its image, resources, volume sizes); merged, they are the schema: an
inventory file may only set keys that exist there, with a value of the same type. A setting
whose default is null takes a string (or stays null). Then each value must be valid where it
lands (datamesh/values.py) and the settings must fit together (datamesh/combinations.py). Every
error is one sentence naming the file, the key and, where known, the line, and is raised before
anything touches a cluster.
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datamesh import ROOT, combinations, values
from datamesh.errors import DatameshError, shown

INVENTORY_DIR = ROOT / "inventory"
DEFAULTS_FILE = INVENTORY_DIR / "defaults.yml"
ROLES_DIR = ROOT / "roles"
DEFAULT_NAME = "docker-desktop"


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


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, where PyYAML has it: 10x faster, same nodes
# libyaml composes nested nodes by C recursion and kills the process (SIGSEGV) some 30,000 levels deep (`- - - x`
# 64 KB long is enough). Text that could nest deep goes to PyYAML's own parser, which stops in Python instead: more
# than NESTING_SAFE of the characters that open a level without a new line ([, {, - and ?), or more than SIZE_SAFE
# characters (a mapping's levels each need a longer indentation). An inventory is a few levels in a few KiB.
NESTING_SAFE = 256
SIZE_SAFE = 64 * 1024


def _loader(text: str) -> type:
    deep = len(text) > SIZE_SAFE or sum(text.count(opener) for opener in "[{-?") > NESTING_SAFE
    return yaml.SafeLoader if deep else LOADER


def _read_yaml(path: Path) -> tuple[Any, dict[str, int]]:
    """Parse YAML, returning the data and the line number of every dotted key; a key set twice is refused."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise DatameshError(f"{shown(path)}: cannot read the inventory ({exc.strerror}).") from exc
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise DatameshError(f"{shown(path)} line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                            "save the file as UTF-8.") from None
    try:
        loader = _loader(text)(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        loader.dispose()
    except yaml.reader.ReaderError as exc:
        line = text[:exc.position].count("\n") + 1
        raise DatameshError(f"{shown(path)} line {line}: not valid YAML (character {exc.character:#06x} is not allowed); "
                            "remove it.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = " ".join((getattr(exc, "problem", None) or str(exc)).split())
        raise DatameshError(f"{shown(path)}{where}: not valid YAML ({problem}); fix the indentation or quoting there.") from exc
    except RecursionError:
        raise DatameshError(f"{shown(path)}: not valid YAML (nested too deeply); an inventory is a few levels of settings.") from None
    lines: dict[str, int] = {}
    _collect_lines(node, "", lines, path, loader)
    return data, lines


def _collect_lines(node: Any, prefix: str, lines: dict[str, int], path: Path, loader: yaml.SafeLoader) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            name = str(loader.construct_object(key_node)) if isinstance(key_node, yaml.ScalarNode) else key_node.value
            key, line = f"{prefix}{name}", key_node.start_mark.line + 1
            if name in seen:
                raise DatameshError(f"{shown(path)} line {line}: key {values.quoted(key)} is set twice (also on line "
                                    f"{seen[name]}); keep one, since YAML would silently use the last.")
            seen[name] = lines[key] = line
            _collect_lines(value_node, key + ".", lines, path, loader)


def _merge(defaults: Any, settings: dict, path: Path, lines: dict[str, int], prefix: str) -> dict:
    merged = copy.deepcopy(defaults)
    for key, value in settings.items():
        dotted = f"{prefix}{key}"
        where = _where(path, lines, dotted)
        if not isinstance(key, str) or key not in defaults:
            raise DatameshError(f"{where}: unknown key {values.quoted(dotted)}{_suggest(key, defaults, prefix)}.")
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
    raise DatameshError(f"{where}: key '{dotted}' must be {expected}, got {_type_name(value)} {values.shown_value(value)}.")


def _check_rules(inventory: Inventory) -> None:
    """What each value must look like where it lands, then the rules that span keys."""
    problem = values.refusal(inventory.vars) or combinations.refusal(inventory.vars)
    if problem:
        place = next((key for key in problem.keys if key in inventory.lines), problem.keys[0])
        raise DatameshError(f"{_where(inventory.path, inventory.lines, place)}: {problem.text}")


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
