"""datamesh/inventory.py and the shipped inventories: every mistake is one sentence naming the file, the key
and the line; each shipped inventory says what its cluster needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from datamesh import ROOT, inventory, playbook
from datamesh.errors import DatameshError


def error_of(path) -> str:
    with pytest.raises(DatameshError) as caught:
        inventory.load(str(path))
    return str(caught.value)


def test_every_shipped_inventory_loads():
    for name in inventory.available():
        assert inventory.load(name).vars["namespaces"]["platform"] == "data-platform"


def test_default_is_docker_desktop_with_lab_logins(monkeypatch):
    monkeypatch.delenv("DATAMESH_INVENTORY", raising=False)
    inv = inventory.load()
    assert inv.name == "docker-desktop"
    assert inv["credentials"]["policy"] == "lab"
    assert inv["cluster"]["context"] == "docker-desktop"


def test_environment_variable_chooses_the_inventory(monkeypatch, write_inventory):
    path = write_inventory("cluster: {context: from-env}\n")
    monkeypatch.setenv("DATAMESH_INVENTORY", str(path))
    assert inventory.load()["cluster"]["context"] == "from-env"


def test_settings_override_defaults_and_keep_the_rest(write_inventory):
    inv = inventory.load(str(write_inventory("storage:\n  postgres-sales: 20Gi\n")))
    assert inv["storage"]["postgres-sales"] == "20Gi"
    assert inv["storage"]["postgres-hive"] == "2Gi"


def test_misspelt_key_names_file_key_line_and_suggestion(write_inventory):
    path = write_inventory("""\
        cluster:
          context: x
        storage:
          postgres-sales: 5Gi
          postgres-hvie: 2Gi
        """)
    message = error_of(path)
    assert "custom.yml line 5" in message
    assert "unknown key 'storage.postgres-hvie'" in message
    assert "did you mean 'storage.postgres-hive'" in message


def test_unknown_top_level_key_lists_known_keys(write_inventory):
    message = error_of(write_inventory("zzz: 1\n"))
    assert "unknown key 'zzz'" in message and "known keys here" in message and "cluster" in message


def test_wrong_type_names_key_and_expected_type(write_inventory):
    message = error_of(write_inventory("timeouts:\n  ready: soon\n"))
    assert "line 2" in message and "'timeouts.ready' must be a positive whole number" in message and "'soon'" in message


def test_mapping_expected(write_inventory):
    assert "'storage' must be a mapping" in error_of(write_inventory("storage: 5Gi\n"))


def test_bad_yaml_names_the_line(write_inventory):
    message = error_of(write_inventory("cluster:\n  context: a\n   hint: b: c\n"))
    assert "custom.yml line 3" in message and "not valid YAML" in message


def test_missing_inventory_lists_the_available_ones():
    with pytest.raises(DatameshError) as caught:
        inventory.load("no-such-cluster")
    message = str(caught.value)
    assert "inventory 'no-such-cluster' not found" in message and "docker-desktop" in message


def test_lab_policy_needs_every_lab_password(write_inventory):
    message = error_of(write_inventory("credentials:\n  policy: lab\n  lab_passwords: {postgres: x}\n"))
    assert "line 2: key 'credentials.policy' is 'lab', which needs credentials.lab_passwords for minio, jupyterhub, grafana" in message


def test_lab_passwords_refused_with_generate_policy(write_inventory):
    message = error_of(write_inventory("credentials:\n  lab_passwords: {postgres: x}\n"))
    assert "only used with policy 'lab'" in message


def test_a_reader_login_named_like_the_owner_is_refused(write_inventory):
    """The readonly Job makes its login NOSUPERUSER: with the owner's name it would demote the owner."""
    message = error_of(write_inventory("credentials:\n  users: {postgres_reader: admin}\n"))
    assert "custom.yml line 2: key 'credentials.users.postgres_reader' must differ" in message


def test_unknown_policy(write_inventory):
    assert "must be one of lab, generate" in error_of(write_inventory("credentials: {policy: random}\n"))


def test_privileged_pod_security_is_refused_naming_the_levels(write_inventory):
    message = error_of(write_inventory("security: {pod_security: privileged}\n"))
    assert "key 'security.pod_security' must be one of restricted, baseline" in message


def test_a_protection_switched_off_must_be_a_boolean(write_inventory):
    assert "must be" in error_of(write_inventory("security: {network_policies: 'no'}\n"))


def test_image_must_be_pinned(write_inventory):
    assert "pinned to an exact tag" in error_of(write_inventory("images: {postgres: 'postgres:latest'}\n"))
    assert "pinned to an exact tag" in error_of(write_inventory("images: {postgres: postgres}\n"))


def test_nodeports_must_be_in_range_and_distinct(write_inventory):
    assert "NodePort range" in error_of(write_inventory("nodeports: {trino: 8080}\n"))
    assert "keys 'nodeports.jupyterhub' and 'nodeports.trino' are both NodePort 30080" in error_of(
        write_inventory("nodeports: {trino: 30080}\n"))


def test_hosts_target_is_local_or_ssh(write_inventory):
    assert "'local' or 'ssh://" in error_of(write_inventory("hosts: {nodeports: remote}\n"))
    assert inventory.load(str(write_inventory("hosts: {nodeports: 'ssh://me@box'}\n")))["hosts"]["nodeports"] == "ssh://me@box"


def test_quantities_must_parse(write_inventory):
    message = error_of(write_inventory("storage: {postgres-sales: five}\n"))
    assert "'storage.postgres-sales'" in message and "quantity" in message


def test_counts_may_be_zero_but_timeouts_may_not(write_inventory):
    assert inventory.load(str(write_inventory("trino: {workers: 0}\n")))["trino"]["workers"] == 0
    assert "'timeouts.api' must be a positive whole number" in error_of(write_inventory("timeouts: {api: 0}\n"))


# -- the file's text ---------------------------------------------------------------------------

def test_a_file_that_is_not_utf8_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"cluster:\n  hint: caf\xe9\n")
    assert "latin1.yml line 2: not UTF-8 text (byte 0xe9)" in error_of(path)


def test_a_control_character_in_the_text_is_refused_naming_its_line(write_inventory):
    assert "custom.yml line 2: not valid YAML (character 0x0000" in error_of(write_inventory("cluster:\n  hint: a\0b\n"))


def test_deeply_nested_yaml_is_refused_not_crashed_on(write_inventory):
    message = error_of(write_inventory("cluster: " + "[" * 3000 + "]" * 3000 + "\n"))
    assert "custom.yml: not valid YAML (nested too deeply)" in message


@pytest.mark.parametrize("text", ["cluster: " + "[" * 30000 + "]" * 30000 + "\n", "- " * 32000 + "x\n"])
def test_yaml_nested_deeper_than_libyaml_survives_is_refused_in_one_sentence(tmp_path, text):
    """libyaml's composer recurses in C: 30,000 levels crash the process (exit 139) instead of raising."""
    path = tmp_path / "deep.yml"
    path.write_text(text)
    code = f"from datamesh import inventory\ninventory.load({str(path)!r})"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "DatameshError: " in result.stderr and "nested too deeply" in result.stderr


def test_a_key_set_twice_is_refused_naming_both_lines(write_inventory):
    """YAML would silently keep the last value, so the first setting would do nothing."""
    message = error_of(write_inventory("storage:\n  minio: 1Gi\n  minio: 2Gi\n"))
    assert "custom.yml line 3: key 'storage.minio' is set twice (also on line 2)" in message


def test_a_key_that_is_null_is_refused_on_its_line(write_inventory):
    assert "custom.yml line 1: unknown key 'None'" in error_of(write_inventory("&anchor:\n  context: x\n"))


def test_a_key_holding_a_line_break_is_named_on_one_line(write_inventory):
    message = error_of(write_inventory("? \"\\ncluster\"\n: x\n"))
    assert "unknown key '\\ncluster'" in message and "\n" not in message


# -- values where they land -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Data_Platform", "data-platform-" + "x" * 60, "-platform", "kube-system", "default"])
def test_a_namespace_name_kubernetes_would_refuse_or_owns_is_refused(write_inventory, name):
    message = error_of(write_inventory(f"namespaces: {{platform: '{name}'}}\n"))
    assert "custom.yml line 1: key 'namespaces.platform' must be a" in message


def test_duplicate_namespace_names_are_refused(write_inventory):
    """Two roles' objects would then share kind, namespace and name, and overwrite each other."""
    message = error_of(write_inventory("namespaces:\n  sales: shared\n  marketing: shared\n"))
    assert "custom.yml line 3: keys 'namespaces.sales' and 'namespaces.marketing' are both the namespace 'shared'" in message


@pytest.mark.parametrize("image", ["Postgres:15", "postgres:15 10", "postgres:", "postgres@sha256:abc", "a" * 300 + ":1"])
def test_an_image_reference_with_bad_characters_is_refused(write_inventory, image):
    message = error_of(write_inventory(f"images: {{postgres: '{image}'}}\n"))
    assert "key 'images.postgres' must be an image reference pinned to an exact tag" in message


def test_a_trino_image_without_a_release_is_refused_at_load_naming_the_file(write_inventory):
    """The trino role reads the release from the tag; refused there, the message could not name the file."""
    message = error_of(write_inventory("images: {trino: 'trinodb/trino:stable'}\n"))
    assert "custom.yml line 1: key 'images.trino' must be a Trino image pinned to an exact release" in message


@pytest.mark.parametrize("settings, key", [
    ("{prefix: /docs/}", "dbt_docs.prefix"), ("{prefix: 'my docs/'}", "dbt_docs.prefix"),
    ("{sync_seconds: 0}", "dbt_docs.sync_seconds"), ("{sync_seconds: 86400}", "dbt_docs.sync_seconds"),
])
def test_dbt_docs_settings_are_refused_at_load_naming_file_and_key(write_inventory, settings, key):
    assert f"custom.yml line 1: key '{key}' must be" in error_of(write_inventory(f"dbt_docs: {settings}\n"))


@pytest.mark.parametrize("amount", ["12 G", "-1Gi", "NaN", "Infinity", "1_000Mi", "1K", "12 GB", "0", "100m", "9e99"])
def test_a_volume_size_kubernetes_would_refuse_or_misread_is_refused(write_inventory, amount):
    """The client's parse_quantity takes ' 5Gi', '-1Gi', 'NaN' and '1_000Mi'; the API server does not, a
    claim of 0 is invalid, and 100m is a tenth of a byte."""
    message = error_of(write_inventory(f"storage: {{minio: '{amount}'}}\n"))
    assert "custom.yml line 1: key 'storage.minio' must be a Kubernetes quantity of whole bytes" in message


@pytest.mark.parametrize("settings", ["resources:\n  jupyterhub-user:\n    limits: {memory: 1Ei}\n",
                                      "storage:\n  dbt-docs: 0E\n"])
def test_an_exa_quantity_is_refused_by_key_or_rendered_never_crashed_on(write_inventory, settings):
    """Valid for the API server; the engine's own reader (kube.quantity) must read what validation lets through."""
    path = write_inventory(settings)
    try:
        loaded = inventory.load(str(path))
    except DatameshError as error:
        assert "custom.yml line " in str(error) and settings.split(":")[0] in str(error)
    else:
        playbook.render_all(playbook.select(playbook.load("up")), loaded)


def test_a_request_above_its_limit_is_refused(write_inventory):
    message = error_of(write_inventory("resources:\n  postgres:\n    requests: {memory: 4Gi}\n"))
    assert ("custom.yml line 3: key 'resources.postgres.requests.memory' (4Gi) is more than "
            "'resources.postgres.limits.memory' (512Mi)") in message


@pytest.mark.parametrize("heap", ["1280MB", "1g ", "0m", "1000"])
def test_a_jvm_heap_the_jvm_would_refuse_is_refused(write_inventory, heap):
    assert "key 'trino.heap' must be a JVM heap size" in error_of(write_inventory(f"trino: {{heap: '{heap}'}}\n"))


def test_a_heap_as_large_as_its_memory_limit_is_refused(write_inventory):
    message = error_of(write_inventory("hive-metastore: {heap: 1g}\n"))
    assert "key 'hive-metastore.heap' (1g) must be below 'resources.hive-metastore.limits.memory' (1Gi)" in message


def test_trino_query_memory_past_the_heap_headroom_is_refused(write_inventory):
    """Trino 476 refuses to start when query.max-memory-per-node plus 30% of the heap exceeds the heap."""
    message = error_of(write_inventory("trino: {query_max_memory_per_node: 1GB}\n"))
    assert "custom.yml line 1: key 'trino.query_max_memory_per_node' (1GB) plus Trino's heap headroom" in message


@pytest.mark.parametrize("size", ["1gb", "1KB", "1 G", "0MB", "-1GB", "1.5.0GB"])
def test_a_trino_data_size_trino_would_refuse_is_refused(write_inventory, size):
    message = error_of(write_inventory(f"trino: {{query_max_memory: '{size}'}}\n"))
    assert "key 'trino.query_max_memory' must be a Trino data size" in message


def test_a_trino_data_size_as_trino_reads_it_is_accepted(write_inventory):
    """airlift's DataSize takes a space between number and unit, and decimals."""
    assert inventory.load(str(write_inventory("trino: {query_max_memory: '1.5 GB'}\n")))["trino"]["query_max_memory"] == "1.5 GB"


def test_a_trino_environment_trino_would_refuse_is_refused(write_inventory):
    assert "key 'trino.environment' must be lowercase letters" in error_of(write_inventory("trino: {environment: Data-Mesh}\n"))


@pytest.mark.parametrize("settings, key", [
    ("timeouts: {ready: 1000000000000}", "timeouts.ready"), ("trino: {workers: 3000000000}", "trino.workers"),
])
def test_a_number_past_what_its_field_holds_is_refused(write_inventory, settings, key):
    assert f"key '{key}' must be" in error_of(write_inventory(settings + "\n"))


@pytest.mark.parametrize("target", ["ssh://[", "ssh://box:99999", "ssh://", "ssh://box/path"])
def test_a_broken_ssh_target_is_refused_not_crashed_on(write_inventory, target):
    assert "key 'hosts.nodeports' must be 'local' or 'ssh://" in error_of(write_inventory(f"hosts: {{nodeports: '{target}'}}\n"))


@pytest.mark.parametrize("address", ["box,evil", "my host", "::1", ""])
def test_a_nodeport_address_that_is_no_host_is_refused(write_inventory, address):
    """It becomes a name of Trino's certificate and part of the console's URL."""
    assert "key 'hosts.address' must be" in error_of(write_inventory(f"hosts: {{address: '{address}'}}\n"))


@pytest.mark.parametrize("settings, key", [
    ("minio: {prefixes: []}", "minio.prefixes"), ("minio: {prefixes: ['raw data/']}", "minio.prefixes"),
    ("minio: {bucket: Data_Lake}", "minio.bucket"), ("minio: {bucket: 192.168.1.1}", "minio.bucket"),
])
def test_bucket_settings_s3_would_refuse_are_refused(write_inventory, settings, key):
    """An empty prefix list would fail the bucket Job (`${PREFIXES:?}`); S3 refuses such bucket names."""
    assert f"key '{key}' must be" in error_of(write_inventory(settings + "\n"))


@pytest.mark.parametrize("settings, key", [
    ("proxy: {http_proxy: 'proxy:3128 x'}", "proxy.http_proxy"), ("proxy: {no_proxy: 'a b'}", "proxy.no_proxy"),
    ("hive-metastore: {jdbc: {repository: 'ftp://x'}}", "hive-metastore.jdbc.repository"),
    ("hive-metastore: {jdbc: {version: '../42'}}", "hive-metastore.jdbc.version"),
    ("hive-metastore: {jdbc: {sha256: abc}}", "hive-metastore.jdbc.sha256"),
    ("storage: {class: Fast_SSD}", "storage.class"),
])
def test_urls_versions_checksums_and_class_names_are_checked_where_they_land(write_inventory, settings, key):
    assert f"key '{key}' must be" in error_of(write_inventory(settings + "\n"))


def test_a_line_break_inside_a_value_is_refused(write_inventory):
    """A heap of `1280M\\n-XX:...` would add a line to jvm.config; no setting spans lines."""
    message = error_of(write_inventory('cluster: {hint: "start it\\nthen retry"}\n'))
    assert "key 'cluster.hint' must be one line of text without control characters" in message


def test_a_kubeconfig_under_an_unknown_home_is_refused_not_crashed_on(write_inventory):
    message = error_of(write_inventory("cluster: {kubeconfig: '~no-such-user-here/config'}\n"))
    assert "key 'cluster.kubeconfig' must be a path to a kubeconfig file" in message


def test_a_huge_value_is_quoted_cut_short(write_inventory):
    message = error_of(write_inventory(f"namespaces: {{platform: '{'x' * 5000}'}}\n"))
    assert "(5002 characters)" in message and len(message) < 400


def test_a_key_owned_by_two_defaults_files_is_refused(tmp_path, monkeypatch):
    for role in ("a", "b"):
        (tmp_path / role).mkdir()
        (tmp_path / role / "defaults.yml").write_text("images: {shared: 'x:1'}\n")
    monkeypatch.setattr(inventory, "ROLES_DIR", tmp_path)
    with pytest.raises(DatameshError, match="key 'images.shared' is already defined by another defaults file"):
        inventory.load_defaults()


# -- the shipped inventories ------------------------------------------------------------------

@pytest.mark.parametrize("name,context", [("kind", "kind-datamesh"), ("k3d", "k3d-datamesh"), ("minikube", "minikube")])
def test_local_cluster_inventories(name, context):
    inv = inventory.load(name)
    assert inv["cluster"]["context"] == context
    assert inv["cluster"]["hint"] != inventory.load_defaults()["cluster"]["hint"]
    assert inv["credentials"]["policy"] == "generate"
    assert inv["hosts"]["nodeports"] == "local"
    assert inv["jupyterhub"]["use_built_image"] is False  # a fresh `up` works before `invoke images`
    assert inv["hosts"]["address"] == ("localhost" if name in ("kind", "k3d") else "192.168.49.2")


def test_remote_example_reaches_the_nodeports_over_ssh():
    inv = inventory.load("remote.example")
    assert inv["hosts"]["nodeports"].startswith("ssh://")
    assert inv["credentials"]["policy"] == "generate"
    assert inv["jupyterhub"]["use_built_image"] is False
