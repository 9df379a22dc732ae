"""The pure parts of the dbt and docs seed steps: reading dbt's log and results, choosing what to
rebuild, and telling a changed docs file from a re-generated one. (dbt itself, on real Trino, is
exercised in tests/e2e/test_dbt.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from datamesh import dbt
from datamesh.role import load_module

trino_seed = load_module("trino", "seed")
docs_seed = load_module("dbt-docs", "seed")

NODES = {
    "model.datamesh.mart_x": {"resource_type": "model", "name": "mart_x",
                              "relation_name": '"sales_domain"."data_products"."mart_x"'},
    "test.datamesh.not_null_mart_x_id.1": {"resource_type": "test", "name": "not_null_mart_x_id",
                                           "test_metadata": {"name": "not_null"}, "column_name": "id",
                                           "attached_node": "model.datamesh.mart_x"},
    "test.datamesh.my_check": {"resource_type": "test", "name": "my_check",
                               "depends_on": {"nodes": ["model.datamesh.mart_x"]}},
}


def test_failures_name_the_model_with_its_relation_and_the_test_with_its_column():
    outcome = dbt.Outcome([
        {"unique_id": "model.datamesh.mart_x", "status": "error",
         "message": "Database Error in model mart_x (models/x.sql)\n  TrinoUserError(type=USER_ERROR, "
                    "message=\"line 1:8: Column 'y' cannot be resolved\", query_id=1)\n  compiled code at /x.sql"},
        {"unique_id": "test.datamesh.not_null_mart_x_id.1", "status": "fail",
         "message": "Got 3 results, configured to fail if != 0"},
        {"unique_id": "test.datamesh.my_check", "status": "fail", "message": "Got 1 result"},
        {"unique_id": "model.datamesh.other", "status": "success", "message": "OK"},
    ], NODES, [])
    assert dbt.failures(outcome) == [
        "model mart_x (sales_domain.data_products.mart_x): line 1:8: Column 'y' cannot be resolved",
        "test not_null on mart_x.id: Got 3 results, configured to fail if != 0",
        "test my_check on mart_x: Got 1 result",
    ]


def test_the_failure_sentence_is_one_line_that_counts_what_it_does_not_name(tmp_path):
    failed = [f"model m{i} (a.b.m{i}): broken" for i in range(5)]
    sentence = dbt.failure_sentence("build", failed, [], tmp_path / "stderr.log", tmp_path, 1)
    assert "model m0" in sentence and "model m2" in sentence and "m3" not in sentence
    assert "and 2 more" in sentence and "invoke seed --only dbt" in sentence and "\n" not in sentence
    (tmp_path / "stderr.log").write_text("Traceback...\nValueError: no profile\n")
    assert "no profile" in dbt.failure_sentence("parse", [], [], tmp_path / "stderr.log", tmp_path, 2)


def test_log_lines_keep_results_and_drop_start_and_pass_lines():
    line = lambda name, msg, level="info", status=None: json.dumps(  # noqa: E731
        {"info": {"name": name, "msg": msg, "level": level}, "data": {"status": status} if status else {}})
    assert dbt.log_line(line("LogStartLine", "1 of 9 START sql view model a")) == ("debug", "")
    assert dbt.log_line(line("LogTestResult", "2 of 9 PASS not_null_a_id", status="pass")) == ("debug", "")
    assert dbt.log_line(line("LogTestResult", "2 of 9 FAIL 3 not_null_a_id", "error", "fail")) == \
        ("error", "2 of 9 FAIL 3 not_null_a_id")
    assert dbt.log_line(line("LogModelResult", "1 of 9 OK created sql view model a")) == \
        ("info", "1 of 9 OK created sql view model a")
    assert dbt.log_line("plain text from a library\n") == ("info", "plain text from a library")
    assert dbt.log_line(line("NothingToDo", "Nothing to do.", "warn")) == ("debug", "")


def test_the_command_runs_this_interpreters_dbt_outside_the_project_folder(tmp_path):
    cmd = dbt.command(["build"], tmp_path, {"lake_bucket": "datalake"})
    assert cmd[:2] == [sys.executable, "-c"] and cmd[3] == "build"
    assert cmd[cmd.index("--target-path") + 1] == str(tmp_path / "target")
    assert cmd[cmd.index("--profiles-dir") + 1] == str(dbt.PROJECT) == cmd[cmd.index("--project-dir") + 1]
    assert json.loads(cmd[cmd.index("--vars") + 1]) == {"lake_bucket": "datalake"}
    version = subprocess.run([sys.executable, "-c", dbt.RUNNER, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "1.11." in version.stdout


KEPT = {"manifest": {"nodes": {"model.datamesh.m": {"resource_type": "model", "name": "m", "database": "hive",
                                                     "schema": "curated"}}},
        "sources": {"sales.public.customers": [10, "AB"]}}


@pytest.mark.parametrize("kept, sources, present, reset, whole", [
    (None, {}, set(), False, "no earlier build"),
    (KEPT, {"sales.public.customers": [11, "AC"]}, {"hive.curated.m"}, False, "sales.public.customers"),
    (KEPT, KEPT["sources"], set(), False, "hive.curated.m no longer exist"),
    (KEPT, KEPT["sources"], {"hive.curated.m"}, True, "--reset"),
])
def test_the_whole_project_is_built_unless_sources_and_relations_are_as_last_built(kept, sources, present, reset,
                                                                                   whole):
    args, why = trino_seed.selection(kept, sources, present, reset)
    assert args == [] and whole in why


def test_unchanged_sources_and_relations_build_only_what_changed_in_the_project():
    args, why = trino_seed.selection(KEPT, dict(KEPT["sources"]), {"hive.curated.m"}, False)
    assert args == ["--select", "state:modified+", "--state", "{state}"] and "unchanged" in why


def test_a_source_is_checksummed_over_all_its_columns_quoted():
    assert trino_seed.checksum_sql("sales", "public", "orders", ["order_id", 'we"ird']) == (
        'SELECT count(*), to_hex(checksum(ROW("order_id", "we""ird"))) FROM "sales"."public"."orders"')
    manifest = {"sources": {"a": {"database": "sales", "schema": "public", "name": "orders", "identifier": "orders"},
                            "b": {"database": "marketing", "schema": "public", "name": "leads"}}}
    assert trino_seed.source_tables(manifest) == [("marketing", "public", "leads"), ("sales", "public", "orders")]


def test_a_regenerated_docs_file_is_the_same_content_and_a_changed_one_is_not():
    first = {"metadata": {"generated_at": "2026-11-30T06:00:00Z", "invocation_id": "a"},
             "nodes": {"model.x": {"name": "x", "created_at": 1.0, "columns": {"id": {"type": "integer"}}}}}
    again = {**first, "metadata": {"generated_at": "2026-11-30T07:00:00Z", "invocation_id": "b"},
             "nodes": {"model.x": {**first["nodes"]["model.x"], "created_at": 2.0}}}
    changed = {**first, "nodes": {"model.x": {"name": "x", "created_at": 1.0, "columns": {"id": {"type": "bigint"}}}}}
    digest = lambda doc: docs_seed.content_digest("manifest.json", json.dumps(doc).encode())  # noqa: E731
    assert digest(first) == digest(again) != digest(changed)
    assert docs_seed.content_digest("index.html", b"<html>") != docs_seed.content_digest("index.html", b"<html> ")


def test_a_contract_failure_names_each_mismatched_column():
    message = ("Compilation Error in model mart_x (models/x.sql)\n  This model has an enforced contract that failed.\n"
               "  Please ensure the name, data_type, and number of columns in your contract match.\n\n"
               "  | column_name | definition_type | contract_type | mismatch_reason |\n"
               "  | ----------- | --------------- | ------------- | ------------------ |\n"
               "  | order_count | DOUBLE | BIGINT | data type mismatch |\n")
    assert dbt.first_line(message) == \
        "This model has an enforced contract that failed. (order_count: DOUBLE vs contract BIGINT)"


def test_dbt_logs_in_as_the_given_trino_user_over_https_trusting_the_ca_written_beside_its_work(tmp_path, monkeypatch):
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    from datamesh.trino import Access

    env = dbt.environment("127.0.0.1", 40001, Access("admin", "s3cret", "-----BEGIN CERTIFICATE-----\n"), tmp_path)
    assert (env["TRINO_METHOD"], env["TRINO_USER"], env["TRINO_PASSWORD"]) == ("ldap", "admin", "s3cret")
    assert (env["TRINO_HOST"], env["TRINO_PORT"]) == ("127.0.0.1", "40001")
    assert open(env["TRINO_CA"]).read().startswith("-----BEGIN CERTIFICATE-----")
    assert env["REQUESTS_CA_BUNDLE"] == env["TRINO_CA"] and "CURL_CA_BUNDLE" not in env  # psf/requests#3829
    plain = dbt.environment("127.0.0.1", 40001, Access("admin"), tmp_path)
    assert plain["TRINO_METHOD"] == "none" and "TRINO_PASSWORD" not in plain
