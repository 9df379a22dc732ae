{#
  A model's custom schema is its schema, as written: `+schema: data_products` builds into
  data_products, not into <target schema>_data_products (dbt's default). Models without a custom
  schema go to the target's schema (profiles.yml: analytics).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}
    {{ target.schema }}
  {%- else -%}
    {{ custom_schema_name | trim }}
  {%- endif -%}
{%- endmacro %}
