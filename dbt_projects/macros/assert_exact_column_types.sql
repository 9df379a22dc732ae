{#
  A stricter contract check for Trino. dbt's own check (get_assert_columns_equivalent) compares
  the type *names* only: dbt-trino reduces every type to what precedes its parentheses, so a model
  whose SQL drifts from varchar(20) to varchar(50), or from decimal(12,2) to decimal(14,4), passes
  it and the value is then silently cast into the contracted column on insert.

  This check asks Trino for the full type of every contracted column of the model's query
  (typeof() over an empty result: nothing is scanned) and fails the model, before anything is
  created or dropped, when one differs from the contract's data_type, e.g. varchar(50) vs varchar(20).
  Types compare case- and space-insensitively, so the contract must spell Trino's types
  (integer, bigint, varchar(320), decimal(12,2), timestamp(6), ...).
#}
{% macro assert_exact_column_types(sql) %}
  {%- set columns = model['columns'].values() | list -%}
  {%- if columns | length == 0 -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set query -%}
    select
    {%- for col in columns %}
      typeof(model_subq.{{ adapter.quote(col['name']) }}){{ ',' if not loop.last }}
    {%- endfor %}
    from (values 1) as one_row (x)
    left join (
      select * from (
        {{ sql }}
      ) where false
    ) as model_subq on true
  {%- endset -%}
  {%- set actual_types = run_query(query).rows[0] -%}
  {%- set mismatches = [] -%}
  {%- for col in columns -%}
    {%- set expected = (col['data_type'] or '') | lower | replace(' ', '') -%}
    {%- set actual = actual_types[loop.index0] | lower | replace(' ', '') -%}
    {%- if expected != actual -%}
      {%- do mismatches.append('  | ' ~ col['name'] ~ ' | ' ~ actual ~ ' | ' ~ expected ~ ' |') -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if mismatches -%}
    {%- set msg -%}
This model has an enforced contract that failed: column types differ from the contract (exact Trino types).
  | column_name | definition_type | contract_type |
{{ mismatches | join('\n') }}
    {%- endset -%}
    {%- do exceptions.raise_compiler_error(msg) -%}
  {%- endif -%}
{% endmacro %}
