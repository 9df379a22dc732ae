"""Any inventory file, drawn from the schema (tests/unit/inventory_strategies.py): refused in one sentence
naming the file and the key, or rendered into objects that are valid where each value lands.

Property 1: loading and rendering every role of the up playbook raises nothing but DatameshError, and
that error names the file, the key (as a dotted path) and the line the file sets it on.
Property 2: what an accepted inventory renders is strictly valid Kubernetes at the newest schema, holds
no two objects of one kind, namespace and name, and each value is valid where it lands: names, image
references, StorageClasses, quantities, Trino's and the JVM's sizes, URLs, the bucket.
A few inventories also go through the command line (`invoke render`, `plan`, `up`).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from hypothesis import event, given, settings
from kubernetes.utils.quantity import parse_quantity
from referencing import Registry, Resource

from datamesh import ROOT, inventory, playbook
from datamesh.errors import DatameshError
from tests.unit import inventory_strategies as inventories
from tests.unit.helpers import NEWEST, all_objects, containers, parse_properties

FILE_NAME = "drawn-inventory.yml"
ROLES = playbook.select(playbook.load("up"))
TEXT_PROBLEM = re.compile(r"not valid YAML|not UTF-8|is set twice|must be a YAML mapping")
SCHEMA_KEYS = {".".join(path[:i]) for path, _ in inventories.LEAVES for i in range(1, len(path) + 1)}

LABEL = re.compile(r"(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # RFC 1123 label: namespaces, pods' names
SERVICE_NAME = re.compile(r"(?=.{1,63}$)[a-z]([-a-z0-9]*[a-z0-9])?")  # RFC 1035 label
SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(?=.{0,63}$)(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_NAME = re.compile(r"(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?)*(?::[0-9]+)?"
IMAGE = re.compile(rf"((?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*):(\w[\w.-]{{0,127}})")  # distribution/reference, tagged
K8S_QUANTITY = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[mkMGTPE]|[eE][-+]?\d+)?")
AIRLIFT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")  # io.airlift.units DataSize and Duration
DATA_UNITS = {"B": 1, "kB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40, "PB": 2**50}
DURATION_UNITS = {"ns", "us", "ms", "s", "m", "h", "d"}
JVM_SIZE = re.compile(r"(\d+)([kKmMgGtT]?)")
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


# -- running an inventory -------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def schema_read_once():
    """The defaults are the same for every example: read them once, not once per example."""
    schema = inventory.load_defaults()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inventory, "load_defaults", lambda: copy.deepcopy(schema))
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("drawn")


def outcome(path: Path) -> DatameshError | tuple[inventory.Inventory, dict[str, list[dict]]]:
    """Load and render, as `invoke render` does; any exception but DatameshError escapes and fails the test."""
    try:
        loaded = inventory.load(str(path))
        return loaded, playbook.render_all(ROLES, loaded)
    except DatameshError as error:
        return error


def written(folder: Path, drawn: inventories.Drawn) -> Path:
    path = folder / FILE_NAME
    path.write_bytes(drawn.text)
    return path


def file_lines(raw: bytes) -> dict[str, int]:
    """The line of every dotted key the file sets ({} when it is no YAML mapping)."""
    try:
        node = yaml.compose(raw.decode(), Loader=yaml.SafeLoader)
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return {}
    lines: dict[str, int] = {}

    def walk(node, prefix):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = yaml.SafeLoader("").construct_object(key) if isinstance(key, yaml.ScalarNode) else key.value
                lines[f"{prefix}{name}"] = key.start_mark.line + 1
                walk(value, f"{prefix}{name}.")
    walk(node, "")
    return lines


def assert_refused_by_name(message: str, path: Path, raw: bytes) -> None:
    """One sentence naming the file; then the YAML problem's line, or the key at fault and its line."""
    assert path.name in message and "\n" not in message, message
    if TEXT_PROBLEM.search(message):
        if "YAML mapping" not in message and "nested too deeply" not in message:
            assert re.search(rf"{re.escape(path.name)} line \d+: ", message), message
        return
    lines = file_lines(raw)
    named = {key for key in SCHEMA_KEYS | set(lines)
             if f"'{key}'" in message or repr(key)[:60] in message or ("." in key and key in message)}
    assert named, f"names no key: {message}"
    set_here = [key for key in named if key in lines]
    if set_here:
        assert any(f" line {lines[key]}: " in message for key in set_here), f"not the line of {set_here}: {message}"


def assert_any_outcome_is_fine(folder: Path, drawn: inventories.Drawn) -> str:
    """Property 1, and for an accepted file property 2; what happened, as a label for Hypothesis' statistics."""
    path = written(folder, drawn)
    result = outcome(path)
    if isinstance(result, DatameshError):
        assert_refused_by_name(str(result), path, drawn.text)
        return "refused: " + re.sub(r" line \d+:|, got .*|\(also on line.*", "", str(result).partition(FILE_NAME)[2])[:90]
    assert_valid_where_it_lands(*result)
    return "accepted"


# -- valid where it lands -------------------------------------------------------------------

@functools.cache
def strict_schema(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """kubernetes_validate's strict schema of one kind at NEWEST, built as its validate() builds it, once
    (validate() reads the schema files again for every object, about 30 ms each)."""
    utils = kubernetes_validate.utils
    version = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(NEWEST)][-1]
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
    definitions = utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


VALIDATED: set[bytes] = set()


def assert_strictly_valid(obj: dict) -> None:
    digest = hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).digest()
    if digest not in VALIDATED:
        strict_schema(obj["kind"], obj["apiVersion"]).validate(obj)
        VALIDATED.add(digest)


def walk(node, key=None):
    """Every (key, value) pair below an object, at any depth."""
    if isinstance(node, dict):
        for child_key, child in node.items():
            yield child_key, child
            yield from walk(child, child_key)
    elif isinstance(node, list):
        for child in node:
            yield key, child
            yield from walk(child, key)


def quantity(text, positive: bool = False) -> Decimal:
    assert isinstance(text, str) and K8S_QUANTITY.fullmatch(text), text
    amount = parse_quantity(text)
    assert amount > 0 if positive else amount >= 0, text
    return amount


def jvm_bytes(text: str) -> int:
    found = JVM_SIZE.fullmatch(text)
    assert found, f"the JVM refuses -Xmx{text}"
    size = int(found[1]) * 1024 ** " kmgt".index(found[2].lower() or " ")
    assert size % 1024 == 0 and size > 2 * 2**20, f"the JVM refuses -Xmx{text}"
    return size


def trino_bytes(text: str) -> Decimal:
    found = AIRLIFT.fullmatch(text)
    assert found and found[2] in DATA_UNITS, f"Trino refuses the data size {text!r}"
    size = Decimal(found[1]) * DATA_UNITS[found[2]]
    assert 0 < size < 2**63, text
    return size


def url_with_host(text: str, schemes: tuple[str, ...]) -> None:
    parts = urllib.parse.urlsplit(text)
    assert parts.scheme in schemes and parts.hostname and (parts.port is None or parts.port > 0), text
    assert not re.search(r"\s", text), text


def host_name(text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        assert re.fullmatch(r"(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*",
                            text), text


def assert_valid_where_it_lands(inv: inventory.Inventory, rendered: dict[str, list[dict]]) -> None:
    objects = all_objects(rendered)
    refs = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(set(refs)) == len(refs), sorted(ref for ref in refs if refs.count(ref) > 1)
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    for obj in objects:
        assert_strictly_valid(obj)
        assert_names_and_labels(obj, namespaces)
        for container in containers(obj):
            assert_container(container)
        claims = [obj] if obj["kind"] == "PersistentVolumeClaim" else obj.get("spec", {}).get("volumeClaimTemplates", [])
        for claim in claims:
            quantity(claim["spec"]["resources"]["requests"]["storage"], positive=True)
        for name in filter(None, obj["metadata"].get("annotations", {}).get("datamesh.io/certificate-names", "").split(",")):
            host_name(name)
        for annotation in ("datamesh.io/extra-requests", "datamesh.io/extra-limits"):
            for amount in filter(None, obj["metadata"].get("annotations", {}).get(annotation, "").split(",")):
                quantity(amount.partition("=")[2])
    assert_trino_files(objects)
    assert_jvm_heaps_fit(objects)


def assert_names_and_labels(obj: dict, namespaces: set[str]) -> None:
    """Names and namespaces Kubernetes takes, labels it takes, numbers its int32 fields hold, StorageClass names."""
    meta, kind = obj["metadata"], obj["kind"]
    name_rule = {"Namespace": LABEL, "Service": SERVICE_NAME, **dict.fromkeys(WORKLOADS, LABEL)}.get(kind, SUBDOMAIN)
    assert name_rule.fullmatch(meta["name"]), f"{kind} {meta['name']!r}"
    if kind != "Namespace":
        assert meta.get("namespace") in namespaces, f"{kind} {meta['name']} in {meta.get('namespace')!r}"
    for key, value in walk({k: v for k, v in obj.items() if k not in ("data", "binaryData")}):
        if isinstance(value, int) and not isinstance(value, bool):
            assert 0 <= value <= 2**31 - 1, (key, value)
        if key == "storageClassName":
            assert SUBDOMAIN.fullmatch(value), value
        if key in ("labels", "matchLabels") and isinstance(value, dict):
            for label, text in value.items():
                prefix, _, label_name = label.rpartition("/")
                assert (not prefix or SUBDOMAIN.fullmatch(prefix)) and LABEL_NAME.fullmatch(label_name), label
                assert isinstance(text, str) and LABEL_VALUE.fullmatch(text), (label, text)
                if label == "kubernetes.io/metadata.name":
                    assert text in namespaces, text
        if key == "namespace" and isinstance(value, str):
            assert value in namespaces, value


def assert_container(container: dict) -> None:
    assert LABEL.fullmatch(container["name"]), container["name"]
    found = IMAGE.fullmatch(container["image"])
    assert found and found[2] != "latest" and len(found[1]) <= 255, container["image"]
    amounts = container["resources"]
    for resource, request in amounts.get("requests", {}).items():
        limit = amounts.get("limits", {}).get(resource)
        assert limit is None or quantity(request) <= quantity(limit), (container["name"], resource, request, limit)
    for resource, limit in amounts.get("limits", {}).items():
        quantity(limit, positive=True)
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    args = container.get("args", [])
    if "--webui-gateways" in args:
        url_with_host(args[args.index("--webui-gateways") + 1], ("http",))
    if "DATAMESH_USER_IMAGE" in env:
        found = IMAGE.fullmatch(env["DATAMESH_USER_IMAGE"])
        assert found and found[2] != "latest", env["DATAMESH_USER_IMAGE"]
    if "DATAMESH_STORAGE_CLASS" in env:
        assert SUBDOMAIN.fullmatch(env["DATAMESH_STORAGE_CLASS"])
    if "DATAMESH_USER_STORAGE" in env:
        quantity(env["DATAMESH_USER_STORAGE"], positive=True)
    for name in ("DATAMESH_USER_CPU_GUARANTEE", "DATAMESH_USER_CPU_LIMIT", "DATAMESH_USER_MEM_GUARANTEE", "DATAMESH_USER_MEM_LIMIT"):
        if name in env:
            assert Decimal(env[name]) >= 0, (name, env[name])
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        if env.get(name):
            url_with_host(env[name], ("http", "https", "socks5", "socks5h"))
    if "JDBC_REPOSITORY" in env:
        url_with_host(env["JDBC_REPOSITORY"], ("http", "https"))
        assert re.fullmatch(r"[0-9a-fA-F]{64}", env["JDBC_SHA256"]) and re.fullmatch(r"[\w.-]+", env["JDBC_VERSION"])
    if "BUCKET" in env:
        bucket = env["BUCKET"]
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) and ".." not in bucket, bucket
    if "PREFIXES" in env:
        assert env["PREFIXES"].split() and all(p.endswith("/") and not p.startswith("/") for p in env["PREFIXES"].split(" "))
    if "PREFIX" in env:
        assert re.fullmatch(r"([^\s/]+/)+", env["PREFIX"]), env["PREFIX"]


def assert_trino_files(objects: list[dict]) -> None:
    """Trino's properties files parse; its data sizes, durations and environment are what Trino reads."""
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "trino-config")["data"]
    for key, text in config.items():
        if not key.endswith(".properties"):
            continue
        for name, value in parse_properties(text).items():
            if name.endswith(("memory", "memory-per-node", "-size", "max-size")):
                trino_bytes(value)
            elif name.endswith(("timeout", "-time", "-interval", "-duration", "-age", "-period")):
                number_unit = AIRLIFT.fullmatch(value)
                assert number_unit and number_unit[2] in DURATION_UNITS, (name, value)
            elif name == "node.environment":
                assert re.fullmatch(r"[a-z0-9][_a-z0-9]*", value), value
    heap = jvm_bytes(re.search(r"^-Xmx(.*)$", config["jvm.config"], re.M)[1])
    per_node = trino_bytes(parse_properties(config["coordinator.properties"])["query.max-memory-per-node"])
    assert per_node + Decimal(heap) * Decimal("0.3") <= heap, "Trino refuses query memory past its heap headroom"


def assert_jvm_heaps_fit(objects: list[dict]) -> None:
    """Each JVM's heap (-Xmx in jvm.config or SERVICE_OPTS) is below its container's memory limit."""
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "trino-config")["data"]
    trino_heap = jvm_bytes(re.search(r"^-Xmx(.*)$", config["jvm.config"], re.M)[1])
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        runs_trino = any(v.get("configMap", {}).get("name") == "trino-config" for v in pod.get("volumes", []))
        for container in containers(obj) if obj["kind"] in WORKLOADS else []:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            heap = trino_heap if runs_trino else None
            if (env.get("SERVICE_OPTS") or "").startswith("-Xmx"):
                heap = jvm_bytes(env["SERVICE_OPTS"].removeprefix("-Xmx"))
            if heap is not None:
                assert heap < parse_quantity(container["resources"]["limits"]["memory"]), container["name"]


# -- the properties -------------------------------------------------------------------------

@settings(max_examples=1500)
@given(inventories.inventories())
def test_any_inventory_is_refused_naming_file_and_key_or_renders_valid_objects(folder, drawn):
    event(assert_any_outcome_is_fine(folder, drawn))


@settings(max_examples=300)
@given(inventories.inventories(values=inventories.gentle, settings_per_file=5, structural=False))
def test_inventories_of_well_shaped_values_render_valid_objects_or_are_refused_by_name(folder, drawn):
    event(assert_any_outcome_is_fine(folder, drawn))


@settings(max_examples=700)
@given(inventories.broken_texts())
def test_broken_yaml_text_is_refused_naming_the_file_and_line(folder, drawn):
    event(assert_any_outcome_is_fine(folder, drawn))


def test_the_cached_strict_schema_is_kubernetes_validates():
    """What the properties validate with is kubernetes_validate's strict schema at NEWEST: it accepts what
    kubernetes_validate accepts and refuses a misspelt field as it does."""
    for obj in all_objects(playbook.render_all(ROLES, inventory.load("docker-desktop"))):
        kubernetes_validate.validate(obj, NEWEST, strict=True)
        strict_schema(obj["kind"], obj["apiVersion"]).validate(obj)
    obj["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, NEWEST, strict=True)
    with pytest.raises(jsonschema.ValidationError):
        strict_schema(obj["kind"], obj["apiVersion"]).validate(obj)


def test_the_defaults_render_valid_objects_where_they_land(folder):
    """The properties' oracle accepts the schema's own defaults (an empty inventory file)."""
    result = outcome(written(folder, inventories.Drawn({}, b"")))
    assert not isinstance(result, DatameshError), result
    assert_valid_where_it_lands(*result)


# -- the command line -----------------------------------------------------------------------

# Shrunk examples the properties found (each refused now), and two inventories the command line accepts.
CLI_CASES = {
    "accepted": "namespaces: {platform: analytics}\ntrino: {workers: 2}\nstorage: {class: fast-ssd}\n",
    "accepted, Trino 435": "images: {trino: 'trinodb/trino:435'}\nhosts: {address: 192.168.49.2}\n",
    "an image without a tag": "images:\n  postgres: '1'\n",
    "a request above its limit": "resources:\n  dbt-docs:\n    requests:\n      memory: 129Mi\n",
    "an unknown S3 server": "minio:\n  server: a\n",
    "a heap too small for Trino's query memory": "trino:\n  heap: 226M\n",
    "one NodePort twice": "nodeports: {jupyterhub: 30031, trino: 30031}\n",
    "not UTF-8": b"\x80",
    "a NUL": b"\x00",
    "a list at the top": "- cluster\n- storage\n",
}


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("KUBECONFIG", "DATAMESH_INVENTORY")}
    env.update(KUBECONFIG=str(home / "no-kubeconfig"), HOME=str(home))
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("case", CLI_CASES)
def test_the_command_line_refuses_with_one_sentence_or_gets_as_far_as_the_cluster(case, tmp_path):
    text = CLI_CASES[case]
    path = tmp_path / FILE_NAME
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    refused = not case.startswith("accepted")
    assert isinstance(outcome(path), DatameshError) == refused
    commands = [("render", "--inventory", str(path), "--out", str(tmp_path / "out")),
                ("plan", "--inventory", str(path)), ("up", "--inventory", str(path))]
    with ThreadPoolExecutor(len(commands)) as pool:
        results = list(pool.map(lambda command: run_cli(*command, home=tmp_path), commands))
    for command, result in zip(commands, results):
        output = result.stdout + result.stderr
        assert "Traceback" not in output, output
        if refused:
            assert result.returncode == 1 and "error: " in result.stderr and FILE_NAME in result.stderr, (command, output)
        elif command[0] == "render":
            assert result.returncode == 0, output
        else:
            assert result.returncode == 1 and f"error: no kubeconfig at {tmp_path / 'no-kubeconfig'}" in result.stderr, output
