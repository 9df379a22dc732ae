"""The postgres role: five PostgreSQL instances, the schema their init SQL creates, and the Jobs
that make the read-only login of the source and domain databases."""

from __future__ import annotations

import copy

from datamesh import role
from datamesh.manifests import read
from tests.unit.helpers import containers, env_of, pod_spec, rendered_for

READERS = {  # (namespace, pod name label) -> (database, schemas the reader reads)
    ("data-platform", "postgres-sales-readonly"): ("sales_db", "public"),
    ("data-platform", "postgres-marketing-readonly"): ("marketing_db", "public"),
    ("sales-domain", "postgres-readonly"): ("sales_domain", "data_products public"),
    ("marketing-domain", "postgres-readonly"): ("marketing_domain", "data_products public"),
}


def test_five_postgres_instances_with_their_volumes_and_databases():
    objects = rendered_for("docker-desktop")["postgres"]
    sets = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in objects if s["kind"] == "StatefulSet"}
    sizes = {key: s["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] for key, s in sets.items()}
    assert sizes == {
        ("data-platform", "postgres-sales"): "5Gi",
        ("data-platform", "postgres-marketing"): "5Gi",
        ("data-platform", "postgres-hive"): "2Gi",
        ("sales-domain", "postgres"): "5Gi",
        ("marketing-domain", "postgres"): "5Gi",
    }
    env = {key: {e["name"]: e for e in s["spec"]["template"]["spec"]["containers"][0]["env"]} for key, s in sets.items()}
    assert env[("data-platform", "postgres-sales")]["POSTGRES_DB"]["value"] == "sales_db"
    assert env[("data-platform", "postgres-marketing")]["POSTGRES_DB"]["value"] == "marketing_db"
    for key, s in sets.items():
        container = s["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
        assert "pg_isready" in " ".join(container["readinessProbe"]["exec"]["command"])
        assert env[key]["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
        assert s["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    services = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in objects if s["kind"] == "Service"}
    assert services == set(sets)


def test_schema_sql_has_the_contract_tables_keys_and_indexes():
    configmaps = {c["metadata"]["name"]: c["data"]["01-schema.sql"] for c in rendered_for("docker-desktop")["postgres"]
                  if c["kind"] == "ConfigMap" and c["metadata"]["name"].endswith("-init")}
    sales, marketing = configmaps["postgres-sales-init"], configmaps["postgres-marketing-init"]
    for table in ("customers", "orders"):
        assert f"CREATE TABLE {table}" in sales
    for table in ("leads", "campaigns"):
        assert f"CREATE TABLE {table}" in marketing
    assert "REFERENCES customers (customer_id)" in sales and "REFERENCES campaigns (campaign_id)" in marketing
    assert "CREATE INDEX" in sales and "CREATE INDEX" in marketing


def readonly_jobs(objects: list[dict]) -> dict[tuple[str, str], dict]:
    """(namespace, the pods' name label) -> the Job."""
    jobs = [o for o in objects if o["kind"] == "Job"]
    return {(j["metadata"]["namespace"], j["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]): j
            for j in jobs}


def test_a_readonly_job_per_source_and_domain_database_none_for_hive(dd):
    jobs = readonly_jobs(dd["postgres"])
    assert set(jobs) == set(READERS)
    for (namespace, name), job in jobs.items():
        database, schemas = READERS[(namespace, name)]
        instance = name.removesuffix("-readonly")
        assert job["metadata"]["name"].startswith(f"{name}-") and len(job["metadata"]["name"]) == len(name) + 9
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "postgres"  # what the network policies let reach the database
        assert job["metadata"]["labels"]["app.kubernetes.io/name"] == name  # `kubectl delete job -l` finds it
        [container] = containers(job)
        assert container["image"] == "postgres:15.10"
        env = env_of(container)
        assert env["PGHOST"]["value"] == f"{instance}.{namespace}.svc.cluster.local"
        assert (env["PGPORT"]["value"], env["PGDATABASE"]["value"], env["SCHEMAS"]["value"]) == ("5432", database, schemas)
        logins = {key: env[key]["valueFrom"]["secretKeyRef"] for key in ("PGUSER", "PGPASSWORD", "READER_USER", "READER_PASSWORD")}
        assert logins == {
            "PGUSER": {"name": f"{instance}-credentials", "key": "username"},
            "PGPASSWORD": {"name": f"{instance}-credentials", "key": "password"},
            "READER_USER": {"name": f"{instance}-credentials", "key": "reader-username"},
            "READER_PASSWORD": {"name": f"{instance}-credentials", "key": "reader-password"},
        }
        assert all(set(e) == {"name", "value"} for k, e in env.items() if k not in logins)  # the rest is no secret


def test_the_readonly_job_runs_the_script_from_a_configmap_in_its_namespace(dd):
    configmaps = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in dd["postgres"] if c["kind"] == "ConfigMap"}
    for (namespace, _), job in readonly_jobs(dd["postgres"]).items():
        spec = pod_spec(job)
        [container] = spec["containers"]
        [mount] = container["volumeMounts"]
        [volume] = spec["volumes"]
        assert volume["name"] == mount["name"] and mount["readOnly"]
        script = configmaps[(namespace, volume["configMap"]["name"])]["data"]
        assert container["command"] == ["/bin/sh", f"{mount['mountPath']}/readonly-role.sh"]
        assert script == {"readonly-role.sh": read("postgres/readonly-role.sh")}
        assert (spec["restartPolicy"], spec["automountServiceAccountToken"], spec["enableServiceLinks"]) == ("Never", False, False)
        assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
        assert job["spec"]["backoffLimit"] >= 1


def test_the_credentials_secret_holds_every_key_the_job_reads(dd):
    secrets = {(s["metadata"]["namespace"], s["metadata"]["name"]): set(s["data"]) for s in dd["credentials"]}
    for (namespace, _), job in readonly_jobs(dd["postgres"]).items():
        for entry in containers(job)[0]["env"]:
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[(namespace, ref["name"])], (namespace, ref)


def test_the_job_name_changes_with_its_script_and_image_and_only_then(docker_desktop):
    module = role.load("postgres").module
    pg = {"name": "postgres-sales", "database": "sales_db", "reader_schemas": ["public"]}
    script = module.readonly_script("data-platform")
    name = module.readonly_job(pg, "data-platform", docker_desktop.vars, script)["metadata"]["name"]
    assert module.readonly_job(pg, "data-platform", docker_desktop.vars, copy.deepcopy(script))["metadata"]["name"] == name
    edited = copy.deepcopy(script)
    edited["data"]["readonly-role.sh"] += "\n"
    assert module.readonly_job(pg, "data-platform", docker_desktop.vars, edited)["metadata"]["name"] != name
    other = copy.deepcopy(docker_desktop.vars)
    other["images"]["postgres"] = "postgres:15.11"
    assert module.readonly_job(pg, "data-platform", other, script)["metadata"]["name"] != name


def test_the_jobs_are_the_same_with_lab_and_generated_passwords():
    """The Job reads the logins from the Secret: nothing of them is in its template, so its name is the same."""
    names = [sorted(j["metadata"]["name"] for j in readonly_jobs(rendered_for(name)["postgres"]).values())
             for name in ("docker-desktop", "kind")]
    assert names[0] == names[1]


def test_a_readonly_job_of_an_earlier_script_is_pruned_and_the_current_one_kept(dd):
    """What `up` prunes after the new Job is done: the role's Jobs it renders no more (their pods go with them)."""
    current = next(o for o in dd["postgres"] if o["kind"] == "Job")
    earlier = copy.deepcopy(current)
    earlier["metadata"]["name"] = current["metadata"]["name"].rsplit("-", 1)[0] + "-00000000"
    assert role.stale([current, earlier], "postgres", dd["postgres"]) == [earlier]
