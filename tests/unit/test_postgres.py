"""The postgres role: five PostgreSQL instances, and the schema their init SQL creates."""

from __future__ import annotations

from tests.unit.helpers import rendered_for


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
                  if c["kind"] == "ConfigMap"}
    sales, marketing = configmaps["postgres-sales-init"], configmaps["postgres-marketing-init"]
    for table in ("customers", "orders"):
        assert f"CREATE TABLE {table}" in sales
    for table in ("leads", "campaigns"):
        assert f"CREATE TABLE {table}" in marketing
    assert "REFERENCES customers (customer_id)" in sales and "REFERENCES campaigns (campaign_id)" in marketing
    assert "CREATE INDEX" in sales and "CREATE INDEX" in marketing
