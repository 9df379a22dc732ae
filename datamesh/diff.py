"""Decide, without writing, whether a live object already has the desired state.

An object needs an apply when it is missing, when the desired manifest changed since our last
apply (a fingerprint annotation records it, so a field we stopped setting is noticed), or when a
field we set was changed behind our back (the desired manifest is no longer a subset of the live
object). Fields the API server adds (defaults, status, managedFields) never count as drift.
"""

from __future__ import annotations

import base64
import copy
import difflib
import hashlib
import json
from typing import Any

import yaml

from datamesh import generated
from datamesh.kube import quantity

FINGERPRINT = "datamesh.io/fingerprint"
GENERATED = "datamesh.io/generated-keys"
COPIED = "datamesh.io/copy-keys"
# A self-signed certificate: `key+cert,cert` (two keys of the Secret) for the names listed beside it.
CERTIFICATE, CERTIFICATE_NAMES = "datamesh.io/certificate-keys", "datamesh.io/certificate-names"
PASSWORD_FILE = "datamesh.io/password-file"  # a key holding PBKDF2 lines for every `<user>-password` key
SERVER_FIELDS = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields", "selfLink")
QUANTITY_PARENTS = {"requests", "limits", "capacity", "allocatable", "hard"}


def fingerprint(desired: dict) -> str:
    body = copy.deepcopy(desired)
    meta = body.get("metadata", {})
    if FINGERPRINT in meta.get("annotations", {}):
        del meta["annotations"][FINGERPRINT]
        if not meta["annotations"]:
            del meta["annotations"]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def stamp(desired: dict) -> dict:
    """The manifest to apply: the desired one with its fingerprint annotation."""
    stamped = copy.deepcopy(desired)
    stamped["metadata"].setdefault("annotations", {})[FINGERPRINT] = fingerprint(desired)
    return stamped


def _annotation_list(desired: dict, name: str) -> list[str]:
    annotation = desired.get("metadata", {}).get("annotations", {}).get(name, "")
    return [item.strip() for item in annotation.split(",") if item.strip()]


def generated_keys(desired: dict) -> list[str]:
    return _annotation_list(desired, GENERATED)


def fill_generated(desired: dict, live: dict | None, known: dict[str, str] | None = None) -> dict:
    """Give a Secret's generated and copied keys their values.

    A generated key keeps its live value, or gets a new random one the first time; a copied key
    (`datamesh.io/copy-keys: key=namespace/secret:key`) takes the value of another Secret's key
    seen earlier in the run (`known`, filled here as Secrets pass) or, failing that, ``live``.
    Rendering stays pure: these keys render empty and the engine fills them.
    """
    known = {} if known is None else known
    keys, copies = generated_keys(desired), _annotation_list(desired, COPIED)
    if desired.get("kind") != "Secret":
        return desired
    filled = copy.deepcopy(desired)
    live_data = (live or {}).get("data") or {}
    for key in keys:
        filled["data"][key] = live_data.get(key) or _b64(generated.token())
    for item in copies:
        key, _, source = item.partition("=")
        if source not in known and not live_data.get(key):
            raise ValueError(f"Secret {filled['metadata']['name']} copies {source}, which no earlier Secret of the run has")
        filled["data"][key] = known.get(source) or live_data[key]
    _fill_certificate(filled, live_data)
    _fill_password_file(filled, live_data)
    meta = filled["metadata"]
    for key, value in filled.get("data", {}).items():
        known[f"{meta.get('namespace')}/{meta['name']}:{key}"] = value
    return filled


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(value: str) -> str:
    return base64.b64decode(value).decode() if value else ""


def _fill_certificate(filled: dict, live_data: dict) -> None:
    keys = _annotation_list(filled, CERTIFICATE)
    if not keys:
        return
    both, cert = keys
    names = _annotation_list(filled, CERTIFICATE_NAMES)
    if live_data.get(both) and generated.certificate_covers(_text(live_data.get(cert, "")), names):
        filled["data"][both], filled["data"][cert] = live_data[both], live_data[cert]
    else:
        pem, cert_pem = generated.self_signed(names)
        filled["data"][both], filled["data"][cert] = _b64(pem), _b64(cert_pem)


def _fill_password_file(filled: dict, live_data: dict) -> None:
    for key in _annotation_list(filled, PASSWORD_FILE):
        passwords = {name.removesuffix("-password"): _text(value)
                     for name, value in filled["data"].items() if name.endswith("-password")}
        current = _text(live_data.get(key, ""))
        keep = current and generated.password_file_matches(current, passwords)
        filled["data"][key] = live_data[key] if keep else _b64(generated.password_file(passwords))


def needs_apply(desired: dict, live: dict | None) -> bool:
    """True when applying `desired` (already stamped) would change the live object."""
    if live is None:
        return True
    want = desired["metadata"].get("annotations", {}).get(FINGERPRINT)
    have = live.get("metadata", {}).get("annotations", {}).get(FINGERPRINT)
    return want != have or not is_subset(desired, live)


def is_subset(desired: Any, live: Any, parent: str = "") -> bool:
    """Every field of `desired` is present in `live` with an equal value."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(key in live and is_subset(value, live[key], key) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(is_subset(d, l, parent) for d, l in zip(desired, live))
    if desired == live:
        return True
    return _same_quantity(desired, live, parent)


def _same_quantity(desired: Any, live: Any, parent: str) -> bool:
    """The API server stores quantities canonically: '0.5' comes back as '500m'."""
    if parent not in QUANTITY_PARENTS and parent not in {"storage", "cpu", "memory"}:
        return False
    try:
        return quantity(desired) == quantity(live)
    except (ValueError, TypeError):
        return False


def clean(obj: dict, redact: bool = False) -> dict:
    """The object without server bookkeeping, for showing a diff; Secret values hidden."""
    shown = copy.deepcopy(obj)
    shown.pop("status", None)
    meta = shown.get("metadata", {})
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    meta.get("annotations", {}).pop(FINGERPRINT, None)
    if not meta.get("annotations"):
        meta.pop("annotations", None)
    if redact and shown.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if field in shown:
                shown[field] = {key: _hidden(value) for key, value in shown[field].items()}
    return shown


def _hidden(value: str) -> str:
    return "(hidden, sha256 " + hashlib.sha256(str(value).encode()).hexdigest()[:8] + ")"


def unified(before: dict | None, after: dict | None, label: str) -> list[str]:
    """A unified YAML diff of two objects as `plan` prints it; None is an absent object."""
    old = yaml.safe_dump(clean(before, redact=True), sort_keys=True).splitlines() if before else []
    new = yaml.safe_dump(clean(after, redact=True), sort_keys=True).splitlines() if after else []
    return list(difflib.unified_diff(old, new, f"live {label}", f"desired {label}", n=2, lineterm=""))
