"""Inventory files drawn from the schema: inventory/defaults.yml merged with every role's defaults.yml.

No setting is named here. Each value is drawn from the default it replaces: the same shape with
other digits, letters or units, cut, repeated, recased, another default of the schema, another
type, or null; so a setting added to a defaults.yml is drawn as soon as it exists. On top, a
file may give two siblings one value, carry a key the schema lacks, or put a scalar where a
section belongs; `broken_texts` then breaks the YAML text itself.
"""

from __future__ import annotations

import datetime
import functools
import string
from dataclasses import dataclass
from typing import Any, Callable

import yaml
from hypothesis import strategies as st

from datamesh import inventory

SCHEMA = inventory.load_defaults()
Path_ = tuple[str, ...]


def leaves(schema: dict, prefix: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Every setting's path and default."""
    out = []
    for key, value in schema.items():
        out += leaves(value, (*prefix, key)) if isinstance(value, dict) else [((*prefix, key), value)]
    return out


def sections(schema: dict, prefix: Path_ = ()) -> list[Path_]:
    """Every mapping's path, the top level () included."""
    return [prefix] + [path for key, value in schema.items() if isinstance(value, dict)
                       for path in sections(value, (*prefix, key))]


def at(schema: dict, path: Path_) -> Any:
    for key in path:
        schema = schema[key]
    return schema


LEAVES = leaves(SCHEMA)
SECTIONS = sections(SCHEMA)
TEXTS = sorted({default for _, default in LEAVES if isinstance(default, str)})
UNITS = ["", "m", "k", "K", "M", "G", "T", "E", "Ki", "Mi", "Gi", "Ti", "ki", "mi", "B", "kB", "KB", "MB", "GB", "TB",
         "mb", "gb", " GB", " Gi", "e3", "E-2", "s", "ms", "h", "%"]
ODD = ["/", ":", "@", "_", "-", ".", " ", "..", "//", "A", "é", "$", "*", "\t", "\n", "\x00", "\x7f", "\ufeff", "'", '"',
       "#", "{", "[", "&", "!", "%", "\\"]
INTERESTING = sorted({sign * (2**k + d) for k in (4, 5, 8, 15, 16, 31, 32, 63) for d in (-1, 0, 1) for sign in (1, -1)}
                     | {sign * (10**k + d) for k in range(1, 20, 3) for d in (-1, 0, 1) for sign in (1, -1)}
                     | {0, 29999, 30000, 32767, 32768})


# -- values ---------------------------------------------------------------------------------

def _runs(text: str) -> list[str]:
    """`text` cut into runs of digits, of letters and of single other characters."""
    runs: list[str] = []
    for char in text:
        kind = char.isdigit(), char.isalpha()
        if runs and char.isalnum() and (runs[-1][-1].isdigit(), runs[-1][-1].isalpha()) == kind:
            runs[-1] += char
        else:
            runs.append(char)
    return runs


DIGITS = st.one_of(st.integers(0, 99), st.integers(0, 10**12))
GENTLE_DIGITS = st.integers(1, 999)
LOWER = st.text(string.ascii_lowercase, min_size=1, max_size=10)
LETTERS = st.text(string.ascii_letters, min_size=1, max_size=10)
OPERATIONS = st.sampled_from(["keep", "keep", "cut", "upper", "swap", "insert", "sign", "repeat", "pad", "untag"])
SEPARATORS, REPLACEMENTS = st.sampled_from(["-", ".", ":", "/", "_"]), st.sampled_from(["_", " ", "", ".", "--"])


@st.composite
def _reshaped(draw, default: str, gentle: bool) -> str:
    runs = _runs(default)
    change_digits, change_letters = draw(st.booleans()), draw(st.booleans())
    for i, run in enumerate(runs):
        after_digits = i > 0 and runs[i - 1].isdigit()
        if run.isdigit() and change_digits:
            runs[i] = str(draw(GENTLE_DIGITS if gentle else DIGITS))
        elif run.isalpha() and after_digits and not gentle and draw(st.booleans()):
            runs[i] = draw(st.sampled_from(UNITS))
        elif run.isalpha() and not after_digits and change_letters:
            runs[i] = draw(LOWER if run.islower() else LETTERS)
    text = "".join(runs)
    operation = "keep" if gentle else draw(OPERATIONS)
    if operation == "cut":
        return text[:draw(st.integers(0, max(len(text) - 1, 0)))]
    if operation == "upper":
        return text.upper()
    if operation == "swap":
        return text.replace(draw(SEPARATORS), draw(REPLACEMENTS))
    if operation == "insert":
        where = draw(st.integers(0, len(text)))
        return text[:where] + draw(st.sampled_from(ODD)) + text[where:]
    if operation == "sign":
        return draw(st.sampled_from(["-", "+", "0"])) + text
    if operation == "repeat":
        return text + draw(st.sampled_from(["a", "0", "-a", "x."])) * draw(st.integers(50, 5000))
    if operation == "pad":
        return draw(st.sampled_from([" ", "  "])) + text + draw(st.sampled_from(["", " "]))
    if operation == "untag" and ":" in text:
        return text.rpartition(":")[0] + draw(st.sampled_from(["", ":latest", ":", "@sha256:abc"]))
    return text


@functools.cache
def reshaped(default: str, gentle: bool = False) -> st.SearchStrategy[str]:
    """The default with its digits, letters or units changed; unless gentle, also cut, recased or spoiled."""
    return _reshaped(default, gentle)


def numbers(default: int, gentle: bool = False) -> st.SearchStrategy[int]:
    if gentle:
        return st.integers(max(default - 50, 0), default + 50)
    return st.one_of(st.integers(default - 3, default + 3), st.integers(-5, 40), st.sampled_from(INTERESTING),
                     st.integers(-(2**70), 2**70))


OTHER_TYPES = {
    "null": st.none(), "bool": st.booleans(), "int": st.integers(-10, 10**6),
    "float": st.floats(allow_nan=True, allow_infinity=True), "str": st.sampled_from(TEXTS),
    "list": st.lists(st.one_of(st.sampled_from(TEXTS), st.integers()), max_size=3),
    "dict": st.dictionaries(st.sampled_from(TEXTS), st.sampled_from(TEXTS), max_size=2),
    "date": st.dates(datetime.date(1970, 1, 1), datetime.date(2100, 1, 1)),
}
TYPE_NAMES = {type(None): "null", bool: "bool", int: "int", str: "str", list: "list", dict: "dict"}


def other_type(default: Any) -> st.SearchStrategy:
    """A value of another type than the default's (null included)."""
    return st.one_of(*(strategy for name, strategy in OTHER_TYPES.items() if name != TYPE_NAMES[type(default)]))


def like(default: Any, gentle: bool = False) -> st.SearchStrategy:
    """A value of the default's own type: reshaped from it or another default of that type."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return numbers(default, gentle)
    if isinstance(default, list):
        items = st.one_of(*(st.one_of(st.just(text), reshaped(text, gentle)) for text in default or TEXTS[:3]))
        return st.lists(items, min_size=1 if gentle else 0, max_size=5)
    if isinstance(default, str):
        if gentle:
            return st.one_of(st.just(default), reshaped(default, gentle=True))
        return st.one_of(st.just(default), reshaped(default), st.sampled_from(TEXTS), ANY_RESHAPED, st.text(max_size=30))
    return st.one_of(st.none(), st.sampled_from(TEXTS), ANY_RESHAPED if not gentle else ANY_GENTLE)


ANY_RESHAPED = st.one_of(*(reshaped(text) for text in TEXTS))
ANY_GENTLE = st.one_of(*(reshaped(text, gentle=True) for text in TEXTS))
MUTATED = {path: st.one_of(like(default), like(default), like(default), other_type(default)) for path, default in LEAVES}
GENTLE = {path: like(default, gentle=True) for path, default in LEAVES}


def mutated(path: Path_) -> st.SearchStrategy:
    """Mostly a value of the default's type, sometimes another type or null."""
    return MUTATED[path]


def gentle(path: Path_) -> st.SearchStrategy:
    """A value of the right type and shape, likely accepted: the default with other digits or letters."""
    return GENTLE[path]


# -- files ----------------------------------------------------------------------------------

@dataclass
class Drawn:
    """One generated inventory: its settings as data and the YAML text (or bytes) of its file."""

    settings: Any
    text: bytes


def put(settings: dict, path: Path_, value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(settings.get(key), dict):
            settings[key] = {}
        settings = settings[key]
    settings[path[-1]] = value


SELDOM = st.sampled_from([False] * 5 + [True])  # shrinks to False: the simplest file has no oddity


@functools.cache
def chosen(values: Callable[[Path_], st.SearchStrategy], per_file: int) -> st.SearchStrategy[list[tuple[Path_, Any]]]:
    """About `per_file` settings of the schema, each drawn with its value (so shrinking drops both at once)."""
    pairs = {path: st.tuples(st.just(path), values(path)) for path, _ in LEAVES}
    setting = st.sampled_from([path for path, _ in LEAVES]).flatmap(pairs.__getitem__)
    return st.lists(setting, max_size=2 * per_file, unique_by=lambda pair: pair[0])


SIBLINGS = st.sampled_from([(parent, first, second) for parent in SECTIONS
                            for first, a in at(SCHEMA, parent).items() for second, b in at(SCHEMA, parent).items()
                            if first != second and not isinstance(a, dict) and type(a) is type(b)])
STRANGERS = st.sampled_from(SECTIONS).flatmap(
    lambda parent: st.tuples(st.just(parent), st.one_of(*(reshaped(key) for key in at(SCHEMA, parent)), st.text(min_size=1, max_size=12))))


@st.composite
def settings(draw, values=mutated, per_file: int = 3, structural: bool = True) -> dict:
    """A few settings of the schema with drawn values; with `structural`, also two siblings given one value,
    a key the schema lacks, or a section given a scalar."""
    out: dict = {}
    for path, value in draw(chosen(values, per_file)):
        put(out, path, value)
    if structural and draw(SELDOM):
        parent, first, second = draw(SIBLINGS)
        put(out, (*parent, second), at(out, (*parent, first)) if _has(out, (*parent, first)) else at(SCHEMA, (*parent, first)))
    if structural and draw(SELDOM):
        parent, name = draw(STRANGERS)
        if name not in at(SCHEMA, parent):
            put(out, (*parent, name), draw(st.sampled_from(TEXTS)))
    if structural and draw(SELDOM):
        put(out, draw(st.sampled_from(SECTIONS[1:])), draw(other_type({})))
    return out


def _has(settings: Any, path: Path_) -> bool:
    for key in path:
        if not isinstance(settings, dict) or key not in settings:
            return False
        settings = settings[key]
    return True


def dumped(settings: Any, flow: bool = False) -> str:
    return yaml.safe_dump(settings, sort_keys=False, allow_unicode=True, default_flow_style=flow, width=4096)


@st.composite
def inventories(draw, values=mutated, settings_per_file: int = 3, structural: bool = True) -> Drawn:
    drawn = draw(settings(values, settings_per_file, structural))
    return Drawn(drawn, dumped(drawn, flow=draw(SELDOM)).encode())


@st.composite
def broken_texts(draw) -> Drawn:
    """An inventory's YAML text broken the ways files break: tabs, unclosed brackets, a key twice,
    bytes that are not UTF-8, a list or a scalar at the top, deep nesting, control characters."""
    drawn = draw(settings(gentle, per_file=2, structural=False))
    flow = draw(st.booleans())
    text = dumped(drawn, flow)
    lines = text.splitlines(keepends=True)
    line = draw(st.integers(0, max(len(lines) - 1, 0)))
    where = draw(st.integers(0, len(text)))
    breakage = draw(st.sampled_from([
        "tab", "unclosed", "opened", "twice", "bytes", "list", "scalar", "nested", "bom", "control", "documents",
        "tag", "crlf", "cut", "indent", "garbage",
    ]))
    if breakage == "tab" and lines:
        lines[line] = "\t" + lines[line].lstrip(" ")
        text = "".join(lines)
    elif breakage == "unclosed":
        text = dumped(drawn, flow=True)
        closing = max(text.rfind("}"), text.rfind("]"))
        text = text[:closing] + text[closing + 1:] if closing >= 0 else text + "{"
    elif breakage == "opened":
        text = text[:where] + draw(st.sampled_from(["[", "{", "'", '"', "&", "*", "!", "|", ">", "%", "@", "`"])) + text[where:]
    elif breakage == "twice" and lines:
        lines.insert(line, lines[line])
        text = "".join(lines)
    elif breakage == "bytes":
        raw = text.encode()
        spot = draw(st.integers(0, len(raw)))
        return Drawn(drawn, raw[:spot] + draw(st.binary(min_size=1, max_size=3).filter(_not_utf8)) + raw[spot:])
    elif breakage == "list":
        text = dumped([drawn] if draw(st.booleans()) else list(drawn), flow)
    elif breakage == "scalar":
        text = draw(st.sampled_from(["just words\n", "42\n", "true\n", "~\n", "''\n", "-\n", "...\n"]))
    elif breakage == "nested":
        depth = draw(st.sampled_from([10, 600]))  # 600 passes Python's recursion limit; PyYAML's scanner is quadratic in it
        text += draw(st.sampled_from(["cluster: " + "[" * depth + "]" * depth + "\n", "cluster:\n" + "- " * depth + "x\n"]))
    elif breakage == "bom":
        text = "\ufeff" + text
    elif breakage == "control":
        text = text[:where] + draw(st.sampled_from(["\x00", "\x07", "\x1b", "\x85", "\ufffe", "\ud800"])) + text[where:]
    elif breakage == "documents":
        text = text + "---\n" + text
    elif breakage == "tag":
        text += draw(st.sampled_from(["cluster: !!python/object/apply:os.system [ls]\n", "cluster: !custom x\n",
                                      "cluster: !!binary aGk=\n", "cluster: !!set {a, b}\n"]))
    elif breakage == "crlf":
        text = text.replace("\n", "\r\n")
    elif breakage == "cut":
        text = text[:where]
    elif breakage == "indent" and lines:
        lines[line] = " " * draw(st.integers(1, 3)) + lines[line]
        text = "".join(lines)
    elif breakage == "garbage":
        return Drawn(drawn, draw(st.binary(max_size=200)))
    return Drawn(drawn, text.encode("utf-8", "surrogatepass"))


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return True
    return False
