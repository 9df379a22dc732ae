"""`invoke verify`'s own logic: pytest's arguments, check names, the report's shape, a real pytest
run of a role's checks (in this process and over xdist workers) giving one result per check with
its sentence and next step, and a JUnit file that parses; the pure helpers the checks use."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ElementTree

import pytest

from datamesh import common_checks, inventory, kube, live_checks, nodeports, verify
from datamesh.errors import DatameshError
from datamesh.report import Reporter
from datamesh.role import STATUSES, Role

ROLE_CHECKS = '''
import pytest

NEXT_STEP = "look at namespace {platform}"


def test_passes(inventory):
    assert inventory.name == "testbed"


def test_fails_with_its_message():
    assert 1 == 2, "one is not two: fix the arithmetic"


@pytest.mark.next_step("do the specific thing")
def test_raises_a_datamesh_error():
    from datamesh.errors import DatameshError
    raise DatameshError("the service at x:1 refused the login")


def test_skips_with_a_reason():
    pytest.skip("nothing published yet: run `invoke seed`")


@pytest.mark.parametrize("name", ["a", "b"])
def test_each(name):
    assert name
'''


@pytest.fixture
def demo_role(tmp_path, monkeypatch):
    """A role folder `demo` holding only a verify.py, and no common checks: pytest runs it for real."""
    (tmp_path / "roles" / "demo").mkdir(parents=True)
    (tmp_path / "roles" / "demo" / "verify.py").write_text(ROLE_CHECKS)
    (tmp_path / "none.py").write_text('"""no common checks in this test"""\n')
    monkeypatch.setattr(verify, "ROLES_DIR", tmp_path / "roles")
    monkeypatch.setattr(verify, "COMMON", tmp_path / "none.py")
    return inventory.load("testbed")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_gives_one_result_per_check_with_its_sentence_and_next_step(demo_role, tmp_path, workers):
    junit = tmp_path / "out.xml"
    checks = {c.name: c for c in verify.run(demo_role, ["demo"], junit=str(junit), workers=workers)}
    assert {name: c.status for name, c in checks.items()} == {
        "passes": "ok", "fails with its message": "failed", "raises a datamesh error": "failed",
        "skips with a reason": "skipped", "each [a]": "ok", "each [b]": "ok"}
    assert all(c.component == "demo" for c in checks.values())
    assert checks["fails with its message"].message == "one is not two: fix the arithmetic"
    assert checks["fails with its message"].next == "look at namespace data-platform"
    assert checks["raises a datamesh error"].message == "the service at x:1 refused the login"
    assert checks["raises a datamesh error"].next == "do the specific thing"
    assert checks["skips with a reason"].message == "nothing published yet: run `invoke seed`"
    assert list(checks) == ["passes", "fails with its message", "raises a datamesh error", "skips with a reason",
                            "each [a]", "each [b]"]

    suite = ElementTree.parse(junit).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    assert (int(suite.get("tests")), int(suite.get("failures")), int(suite.get("skipped"))) == (6, 2, 1)
    failed = next(case for case in suite.iter("testcase") if case.get("name") == "test_fails_with_its_message")
    properties = {p.get("name"): p.get("value") for p in failed.iter("property")}
    assert properties == {"component": "demo", "message": "one is not two: fix the arithmetic",
                          "next": "look at namespace data-platform"}


def test_a_verify_file_that_does_not_load_is_one_failed_check_naming_it(demo_role, tmp_path):
    (tmp_path / "roles" / "demo" / "verify.py").write_text("import not_a_module_anywhere\n")
    checks = verify.run(demo_role, ["demo"], workers=1)
    assert len(checks) == 1, checks
    check = checks[0]
    assert (check.component, check.status) == ("demo", "failed")
    assert "not_a_module_anywhere" in check.message


def test_pytest_args_name_the_common_checks_and_only_roles_with_a_verify_file():
    inv = inventory.load("docker-desktop")
    args = verify.pytest_args(inv, ["credentials", "trino"])
    paths = [a for a in args if a.endswith(".py")]
    assert paths == [str(verify.COMMON), str(verify.ROLES_DIR / "trino" / "verify.py")]
    assert args[args.index("--hosts") + 1] == "local://"
    assert args[args.index("--datamesh-roles") + 1] == "credentials,trino"
    assert args[args.index("--datamesh-inventory") + 1] == str(inv.path)
    assert "-n" not in args and "-m" not in args and "--junitxml" not in args


def test_pytest_args_add_workers_k_and_junit_when_asked():
    inv = inventory.load("docker-desktop")
    args = verify.pytest_args(inv, ["trino"], keyword="login", junit="/tmp/x.xml", workers=3)
    assert args[args.index("-n") + 1] == "3"
    assert args[args.index("-k") + 1] == "login" and args[args.index("--junitxml") + 1] == "/tmp/x.xml"
    assert "xdist.plugin" in args


def test_an_ssh_host_goes_to_testinfra_as_written(write_inventory):
    url = "ssh://admin@node.example:2222?ssh_identity_file=/keys/id"
    inv = inventory.load(str(write_inventory(f"hosts:\n  nodeports: '{url}'\n")))
    args = verify.pytest_args(inv, ["trino"])
    assert args[args.index("--hosts") + 1] == url
    target = nodeports.ssh_target(url)
    assert (target.user, target.host, target.port, target.identity, target.config) == \
        ("admin", "node.example", 2222, "/keys/id", None)


@pytest.mark.parametrize("nodeid, component, name", [
    ("roles/trino/verify.py::test_select_1_answers", "trino", "select 1 answers"),
    ("roles/trino/verify.py::test_each_catalog_lists_its_schemas[sales_domain]", "trino",
     "each catalog lists its schemas [sales_domain]"),
    ("datamesh/common_checks.py::test_volumes_are_bound[dbt-docs]", "dbt-docs", "volumes are bound"),
    ("datamesh/common_checks.py::test_its_nodeports_are_reachable[local-dbt-docs]", "dbt-docs",
     "its nodeports are reachable [local]"),
    ("datamesh/common_checks.py::test_its_nodeports_are_reachable[ssh://h:22?ssh_config=/a-b/c-trino]", "trino",
     "its nodeports are reachable [ssh://h:22]"),
])
def test_check_names_read_as_sentences_without_the_role_or_key_paths(nodeid, component, name):
    assert verify.check_name(nodeid, component) == name


def test_the_report_has_the_shape_of_ups(tmp_path):
    checks = [verify.Check("trino", "select 1 answers", "ok", 0.1),
              verify.Check("postgres", "each database [sales]", "failed", 0.2, "refused", "fix it"),
              verify.Check("trino", "join", "skipped", 0.0, "run seed")]
    verify.write_json(checks, ["postgres", "trino"], tmp_path / "r.json", 1.5)
    document = json.loads((tmp_path / "r.json").read_text())
    assert list(document["totals"]) == list(STATUSES)
    assert document["totals"] == {"ok": 1, "changed": 0, "failed": 1, "skipped": 1}
    assert [r["name"] for r in document["roles"]] == ["postgres", "trino"]
    assert document["roles"][0]["error"] == "each database [sales]: refused"
    assert document["roles"][1]["error"] is None
    assert document["roles"][0]["checks"][0] == {"component": "postgres", "name": "each database [sales]",
                                                 "status": "failed", "seconds": 0.2, "message": "refused",
                                                 "next": "fix it"}


def test_verify_refuses_a_k_that_matches_nothing(demo_role, monkeypatch):
    monkeypatch.setattr("datamesh.playbook.connect", lambda inventory, reporter: None)  # no cluster in unit tests
    with pytest.raises(DatameshError, match="no check matched -k 'nothing_like_this'"):
        verify.verify(demo_role, [Role("demo", None)], Reporter(io.StringIO()), keyword="nothing_like_this", workers=1)


# ------------------------------------------------------------------ the checks' pure helpers

NOW = kube.timestamp("2026-11-30T10:00:00Z")


def pod(restarts: int, finished: str | None = None, waiting: str | None = None) -> dict:
    status = {"name": "main", "restartCount": restarts, "state": {"waiting": {"reason": waiting}} if waiting else {}}
    if finished:
        status["lastState"] = {"terminated": {"finishedAt": finished}}
    return {"status": {"containerStatuses": [status]}}


@pytest.mark.parametrize("given, looping", [
    (pod(0), False),
    (pod(1, "2026-11-30T09:59:00Z"), False),                 # one restart: not a loop
    (pod(5, "2026-11-29T10:00:00Z"), False),                 # many, but long ago: history
    (pod(3, "2026-11-30T09:58:00Z"), True),                  # many, the last two minutes ago
    (pod(2, "2026-11-30T09:59:30Z", "CrashLoopBackOff"), True),
])
def test_a_restart_loop_is_recent_restarts_or_crash_loop_back_off(given, looping):
    assert (kube.restart_loop(given, NOW) is not None) is looping


def test_the_secret_keys_a_role_renders_and_reads(dd):
    assert live_checks.secret_keys(dd["trino"]) == {
        ("data-platform", "postgres-sales-credentials"): {"reader-username", "reader-password"},
        ("data-platform", "postgres-marketing-credentials"): {"reader-username", "reader-password"},
        ("data-platform", "trino-catalog-credentials"): {"sales-domain-username", "sales-domain-password",
                                                         "marketing-domain-username", "marketing-domain-password"},
        ("data-platform", "minio-credentials"): {"root-user", "root-password"},
        ("data-platform", "trino-users"): {"shared-secret", "password.db"},
        ("data-platform", "trino-tls"): {"tls.pem"},
    }
    assert common_checks.publishes_nodeports(dd["trino"]) and not live_checks.keeps_volumes(dd["trino"])
    assert live_checks.keeps_volumes(dd["postgres"]) and not common_checks.publishes_nodeports(dd["postgres"])


def test_the_inventory_refuses_a_worker_count_out_of_range(write_inventory):
    with pytest.raises(DatameshError, match=r"custom.yml line 2: key 'verify.workers' must be from 0"):
        inventory.load(str(write_inventory("verify:\n  workers: 99\n")))


def test_the_inventory_refuses_an_ssh_host_without_a_host_name(write_inventory):
    with pytest.raises(DatameshError, match="key 'hosts.nodeports' must be 'local' or 'ssh://user@host"):
        inventory.load(str(write_inventory("hosts:\n  nodeports: 'ssh://'\n")))


def test_the_inventory_refuses_not_run_for_an_unknown_component(write_inventory):
    with pytest.raises(DatameshError, match="unknown key 'verify.not_run.grafanna'"):
        inventory.load(str(write_inventory("verify:\n  not_run:\n    grafanna: typo\n")))


def test_nodeports_over_ssh_without_an_ssh_client_is_one_sentence(monkeypatch):
    monkeypatch.setenv("PATH", "")
    opened = nodeports.NodePorts({"hosts": {"nodeports": "ssh://me@jump", "address": "localhost"},
                                  "nodeports": {"trino": 30081}})
    with pytest.raises(DatameshError, match=r"needs the OpenSSH client `ssh` on this machine's PATH; install it"):
        opened.url("trino")
    opened.close()


def test_local_nodeports_are_the_address_itself_and_closing_them_is_harmless():
    opened = nodeports.NodePorts(inventory.load("docker-desktop"))
    assert opened.url("trino") == "http://localhost:30081"
    opened.close()
    opened.close()
