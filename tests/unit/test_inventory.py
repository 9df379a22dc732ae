"""datamesh/inventory.py and the shipped inventories: every mistake is one sentence naming the file, the key
and the line; each shipped inventory says what its cluster needs."""

from __future__ import annotations

import pytest

from datamesh import inventory
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
    assert "policy 'lab' needs credentials.lab_passwords for minio, jupyterhub, grafana" in message


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
    assert "given to both jupyterhub and trino" in error_of(write_inventory("nodeports: {trino: 30080}\n"))


def test_hosts_target_is_local_or_ssh(write_inventory):
    assert "'local' or 'ssh://" in error_of(write_inventory("hosts: {nodeports: remote}\n"))
    assert inventory.load(str(write_inventory("hosts: {nodeports: 'ssh://me@box'}\n")))["hosts"]["nodeports"] == "ssh://me@box"


def test_quantities_must_parse(write_inventory):
    message = error_of(write_inventory("storage: {postgres-sales: five}\n"))
    assert "'storage.postgres-sales'" in message and "quantity" in message


def test_counts_may_be_zero_but_timeouts_may_not(write_inventory):
    assert inventory.load(str(write_inventory("trino: {workers: 0}\n")))["trino"]["workers"] == 0
    assert "'timeouts.api' must be a positive whole number" in error_of(write_inventory("timeouts: {api: 0}\n"))


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
