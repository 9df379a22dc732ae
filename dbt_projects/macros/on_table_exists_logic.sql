{#
  Wraps dbt-trino's on_table_exists_logic (dbt/include/trino/macros/materializations/table.sql),
  which its table materialization calls by bare name: the root project's macro of that name wins.
  It runs for every table model, whatever its on_table_exists, before any DDL:

  * A contracted model's query is checked against its contract, names and base types by dbt's own
    check and then exact types (assert_exact_column_types: varchar(50) is not varchar(20)).
  * With on_table_exists: 'drop' (the Hive tables of this project) dbt-trino drops the existing
    table first and only then runs create_table_as, which is where dbt checks a contract: a
    violation, or a query that does not even plan, would leave the published product dropped.
    Checked here first, the product stays as it was. (An uncontracted model's query is at least
    planned, `... where false limit 0`, before its table is dropped.)

  Then dbt-trino's own logic (in the internal `dbt` namespace) runs unchanged.
#}
{% macro on_table_exists_logic(on_table_exists, existing_relation, intermediate_relation, backup_relation, target_relation) -%}
  {%- if config.get('contract').enforced -%}
    {%- do get_assert_columns_equivalent(sql) -%}
    {%- do assert_exact_column_types(sql) -%}
  {%- elif on_table_exists == 'drop' and existing_relation is not none -%}
    {%- do get_column_schema_from_query(sql) -%}
  {%- endif -%}
  {%- do dbt.on_table_exists_logic(on_table_exists, existing_relation, intermediate_relation, backup_relation, target_relation) -%}
{%- endmacro %}
