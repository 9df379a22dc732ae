"""What the unit tests share: rendering an inventory, finding objects in it, reading the files roles render.

A plain module that tests import (`from tests.unit.helpers import ...`); fixtures live in conftest.py.
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from xml.etree import ElementTree

import kubernetes_validate

from datamesh import ROOT, inventory, playbook, role

OLDEST, NEWEST = "1.29.0", kubernetes_validate.utils.latest_version() + ".0"  # the Kubernetes schemas we validate against
GiB = 2**30


# -- rendering --------------------------------------------------------------------------------

def rendered_for(name: str) -> dict[str, list[dict]]:
    """Every role of the up playbook rendered for inventory `name` (a name under inventory/ or a path)."""
    return playbook.render_all(playbook.select(playbook.load("up")), inventory.load(name))


def all_objects(rendered: dict[str, list[dict]]) -> list[dict]:
    return [obj for objects in rendered.values() for obj in objects]


def render(name: str, inv: inventory.Inventory) -> list[dict]:
    """One role's objects for an inventory."""
    return role.load(name).render(inv.vars)


# -- finding objects --------------------------------------------------------------------------

def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    """The one object of this kind (and name, when given)."""
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} found"
    return matches[0]


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def containers(obj: dict) -> list[dict]:
    """A workload's init containers and containers; nothing for other objects."""
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("initContainers", []) + spec.get("containers", [])


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


# -- the files roles render -------------------------------------------------------------------

def parse_properties(text: str) -> dict[str, str]:
    """A Java properties file, refusing a line that is not `key=value` and a key set twice."""
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not a property line: {line!r}"
            assert key.strip() not in out, f"{key} set twice"
            out[key.strip()] = value.strip()
    return out


def parse_site(text: str) -> dict[str, str]:
    """A Hadoop configuration file (hive-site.xml, core-site.xml): name -> value."""
    root = ElementTree.fromstring(text)
    return {prop.findtext("name"): prop.findtext("value") for prop in root.iter("property")}


def java_size(text: str) -> Decimal:
    """A JVM or Trino size (512m, 1280M, 1GB) in bytes."""
    number, unit = re.fullmatch(r"(\d+)([kKmMgG])?[bB]?", text).groups()
    return Decimal(number) * 1024 ** " kmg".index((unit or " ").lower())


def user_server_labels(username: str = "admin") -> dict[str, str]:
    """The labels KubeSpawner 6.2 puts on a user's server (`_build_pod_labels`): the user's name, our
    extra_labels (files/jupyterhub/jupyterhub_config.py), its common labels, its component and server name."""
    config = ast.parse((ROOT / "files/jupyterhub/jupyterhub_config.py").read_text())
    extra = next(ast.literal_eval(node.value) for node in config.body if isinstance(node, ast.Assign)
                 and any(getattr(target, "id", None) == "part_of" for target in node.targets))
    return {"hub.jupyter.org/username": username, **extra, "app": "jupyterhub", "heritage": "jupyterhub",
            "component": "singleuser-server", "hub.jupyter.org/servername": ""}
