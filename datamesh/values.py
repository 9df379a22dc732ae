"""What each of an inventory's values must look like where it lands.

Pure: `refusal(vars)` looks at the merged settings and returns the first value that would not work
as the key at fault and one sentence naming it; datamesh/inventory.py adds the file and the line.
A setting is checked by the first pattern of FORMATS its dotted key matches, so a new key under a
section gets the section's check. Each check knows the grammar of the place the value lands: a
Kubernetes name or quantity, an image reference, a JVM or Trino size, a URL, a bucket.
Rules over several keys at once are datamesh/combinations.py's.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

from datamesh import kube

CREDENTIAL_POLICIES = ("lab", "generate")
POD_SECURITY_LEVELS = ("restricted", "baseline")  # privileged is never enforced: it would admit anything
MINIO_SERVERS = ("versitygw", "minio")  # roles/minio/render.py
INT32_MAX = 2**31 - 1  # what Kubernetes' integer fields (replicas, ports, seconds) hold
QUANTITY_MAX = 2**63 - 1  # Kubernetes caps a larger quantity silently

LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*")
_DOMAIN = r"[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?)*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(rf"(?P<name>(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*):(?P<tag>\w[\w.-]{{0,127}})")  # distribution/reference
QUANTITY = re.compile(r"(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[mkMGTPE]|[eE][-+]?\d+)?")  # unsigned; apimachinery's grammar
JVM_SIZE = re.compile(r"(\d+)([kKmMgGtT]?)")
TRINO_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB|PB)\s*")  # airlift's DataSize
TRINO_ENVIRONMENT = re.compile(r"[a-z0-9][_a-z0-9]*")  # airlift's NodeConfig
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
FOLDER = re.compile(r"([A-Za-z0-9!_.*'()-]+/)+")  # S3's safe characters, ending in /
NO_PROXY_ENTRY = re.compile(r"[A-Za-z0-9.*/:_\[\]-]+")
MAVEN_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class Refusal:
    """The keys at fault (the message's place is the first of them the file sets) and what to do."""

    keys: tuple[str, ...]
    text: str


def refusal(vars: dict) -> Refusal | None:
    """The first setting that would not work where it lands."""
    for dotted, value in leaves(vars):
        expected = expectation(dotted, value)
        if expected:
            return Refusal((dotted,), f"key '{dotted}' must be {expected}, got {shown_value(value)}.")
    return None


def leaves(settings: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in settings.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def expectation(dotted: str, value: Any) -> str | None:
    """What the value of `dotted` must be, when it is not; None when it is fine."""
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(text, str) and CONTROL.search(text) for text in texts):
        return "one line of text without control characters"
    for pattern, check in FORMATS:
        if fnmatch.fnmatchcase(dotted, pattern):
            return check(value) if value is not None else None
    return None


def quoted(key: str) -> str:
    """A key as a message names it: in quotes, or as Python writes it when it holds what a line cannot."""
    return f"'{key}'" if key.isprintable() and len(key) <= 80 else shown_value(key)


def shown_value(value: Any) -> str:
    """A value as a message quotes it: cut short when long."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


# -- one value ------------------------------------------------------------------------------

def between(least: int, most: int, expected: str) -> Callable[[int], str | None]:
    return lambda value: None if least <= value <= most else expected


def whole_number(value: Any) -> str | None:
    """Any other number: Kubernetes' integer fields hold 32 bits."""
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= INT32_MAX:
        return f"a whole number from 0 to {INT32_MAX}"
    return None


def one_of(choices: tuple[str, ...], why: str = "") -> Callable[[str], str | None]:
    return lambda value: None if value in choices else f"one of {', '.join(choices)}{why}"


def matching(pattern: re.Pattern, expected: str) -> Callable[[str], str | None]:
    return lambda value: None if pattern.fullmatch(value) else expected


def namespace(value: str) -> str | None:
    if value == "default" or value.startswith("kube-"):
        return "a namespace of the platform's own, not one of Kubernetes' (default, kube-*)"
    return None if LABEL.fullmatch(value) else ("a DNS-1123 label: lowercase letters, digits and '-', "
                                                "starting and ending with a letter or digit, at most 63 characters")


def image(value: str) -> str | None:
    found = len(value) <= 400 and IMAGE.fullmatch(value)
    if found and found["tag"] != "latest" and len(found["name"]) <= 255:
        return None
    return "an image reference pinned to an exact tag, such as postgres:15.10 or registry.example:5000/team/app:1.2 (lowercase name, no :latest)"


def trino_image(value: str) -> str | None:
    if image(value) or not re.fullmatch(r"\d+(-[\w.-]+)?", IMAGE.fullmatch(value)["tag"]):
        return "a Trino image pinned to an exact release, such as trinodb/trino:476"
    return None


def quantity(value: str, whole_bytes: bool = False, positive: bool = False) -> str | None:
    """A Kubernetes quantity as the API server parses it, unsigned, and as the engine reads it (the roles and
    the budget use kube.quantity); memory and storage in whole bytes."""
    expected = ("a Kubernetes quantity of whole bytes such as 512Mi, 5Gi or 1G" if whole_bytes
                else "a Kubernetes quantity such as 512Mi, 5Gi or 500m")
    try:
        amount = kube.quantity(value) if QUANTITY.fullmatch(value) else None
    except ValueError:
        amount = None
    if amount is None:
        return expected
    if amount > QUANTITY_MAX:
        return f"{expected}, at most 2^63-1"
    if positive and amount <= 0:
        return f"{expected}, more than 0"
    if whole_bytes and amount != amount.to_integral_value():
        hint = f": 'm' means thousandths, did you mean {value[:-1]}Mi?" if value.endswith("m") else ""
        return f"{expected} ({value} is {amount} bytes{hint})"
    return None


def jvm_size(value: str) -> Decimal | None:
    """-Xmx's size in bytes (512m, 1280M, 2g), or None when the JVM would refuse it."""
    found = JVM_SIZE.fullmatch(value)
    if not found:
        return None
    size = Decimal(found[1]) * 1024 ** " kmgt".index(found[2].lower() or " ")
    return size if size % 1024 == 0 and size > 2 * 1024**2 else None


def heap(value: str) -> str | None:
    return None if jvm_size(value) else ("a JVM heap size such as 512m or 1280M (a whole number, then k, m, g or t; "
                                         "more than 2m, in whole kilobytes; not MB)")


def trino_size(value: str) -> Decimal | None:
    """A Trino data size in bytes (640MB, 1GB), or None when Trino would refuse it."""
    found = TRINO_SIZE.fullmatch(value)
    if not found:
        return None
    size = Decimal(found[1]) * 1024 ** ["B", "kB", "MB", "GB", "TB", "PB"].index(found[2])
    return size if 0 < size <= QUANTITY_MAX else None


def data_size(value: str) -> str | None:
    return None if trino_size(value) else "a Trino data size such as 640MB or 1GB (B, kB, MB, GB, TB or PB), more than 0"


def url(schemes: tuple[str, ...], example: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        expected = f"a URL such as {example}"
        try:
            parts = urllib.parse.urlsplit(value)
            port_ok = parts.port is None or 0 < parts.port
        except ValueError:
            return expected
        plain = not re.search(r"\s", value) and not parts.query and not parts.fragment
        return None if parts.scheme in schemes and host(parts.hostname or "") is None and port_ok and plain else expected
    return check


def host(value: str) -> str | None:
    try:
        ipaddress.IPv4Address(value)
        return None
    except ValueError:
        return None if HOSTNAME.fullmatch(value) else "a host name or IPv4 address, such as localhost or 192.168.49.2"


def nodeports_target(value: str) -> str | None:
    if value == "local":
        return None
    expected = "'local' or 'ssh://user@host[:port]'"
    try:
        parts = urllib.parse.urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port
    except ValueError:
        return expected
    fine = parts.scheme == "ssh" and parts.hostname and port_ok and parts.path in ("", "/") and not re.search(r"\s", value)
    return None if fine else expected


def no_proxy(value: str) -> str | None:
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if entries and all(NO_PROXY_ENTRY.fullmatch(entry) for entry in entries):
        return None
    return "a comma-separated list of hosts, domains and CIDRs, such as .svc,.cluster.local,10.0.0.0/8"


def kubeconfig(value: str) -> str | None:
    try:
        Path(value).expanduser()
    except RuntimeError:
        return f"a path to a kubeconfig file ({value.split('/')[0]} names no user of this machine)"
    return None


def bucket(value: str) -> str | None:
    try:
        ipaddress.IPv4Address(value)
        address = True
    except ValueError:
        address = False
    if BUCKET.fullmatch(value) and ".." not in value and not address:
        return None
    return "an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"


def folder(value: str) -> str | None:
    if FOLDER.fullmatch(value) and not {".", ".."} & set(value.split("/")):
        return None
    return "a folder of the bucket such as _datamesh/dbt-docs/ (no leading /, ending in /, no spaces)"


def folders(value: list[str]) -> str | None:
    if value and not any(folder(item) for item in value):
        return None
    return "a non-empty list of folders of the bucket such as [raw/, processed/] (each ending in /, no spaces)"


FORMATS: list[tuple[str, Callable[[Any], str | None]]] = [
    ("cluster.kubeconfig", kubeconfig),
    ("hosts.nodeports", nodeports_target),
    ("hosts.address", host),
    ("namespaces.*", namespace),
    ("images.trino", trino_image),
    ("images.*", image),
    ("storage.class", matching(SUBDOMAIN, "a StorageClass name: lowercase letters, digits, '-' and '.', at most 253 characters")),
    ("storage.*", lambda value: quantity(value, whole_bytes=True, positive=True)),
    ("resources.*.requests.memory", lambda value: quantity(value, whole_bytes=True)),
    ("resources.*.limits.memory", lambda value: quantity(value, whole_bytes=True, positive=True)),
    ("resources.*.requests.*", quantity),
    ("resources.*.limits.*", lambda value: quantity(value, positive=True)),
    ("nodeports.*", between(30000, 32767, "in Kubernetes' NodePort range 30000-32767")),
    ("proxy.no_proxy", no_proxy),
    ("proxy.*", url(("http", "https", "socks5", "socks5h"), "http://proxy.example:3128")),
    ("timeouts.*", between(1, 86400, "a positive whole number of seconds, at most 86400 (a day)")),
    ("verify.workers", between(0, 32, "from 0 (one per CPU) to 32")),
    ("security.pod_security", one_of(POD_SECURITY_LEVELS, " (the Pod Security level enforced on every namespace)")),
    ("credentials.policy", one_of(CREDENTIAL_POLICIES)),
    ("hive-metastore.heap", heap),
    ("hive-metastore.jdbc.repository", url(("http", "https"), "https://repo1.maven.org/maven2")),
    ("hive-metastore.jdbc.version", matching(MAVEN_VERSION, "a Maven version such as 42.7.3")),
    ("hive-metastore.jdbc.sha256", matching(SHA256, "the jar's SHA-256: 64 hexadecimal digits")),
    ("minio.server", one_of(MINIO_SERVERS)),
    ("minio.bucket", bucket),
    ("minio.prefixes", folders),
    ("dbt_docs.prefix", folder),
    ("dbt_docs.sync_seconds", between(1, 3600, "a whole number of seconds from 1 to 3600")),
    ("trino.environment", matching(TRINO_ENVIRONMENT, "lowercase letters, digits and '_', starting with a letter or digit")),
    ("trino.heap", heap),
    ("trino.query_max_memory*", data_size),
    ("*", lambda value: whole_number(value)),
]
