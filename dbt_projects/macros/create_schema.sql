{#
  Overrides dbt-trino's trino__create_schema(relation) (dbt/include/trino/macros/adapters.sql),
  which dbt calls, through adapter.dispatch('create_schema'), for every schema a run needs that
  does not exist yet. The root project's macro of the same name wins over the adapter's.

  A schema of the lake catalog (hive) is created in the data lake's bucket, at
  s3a://<var lake_bucket>/<schema>/ (the cross-domain products: s3a://datalake/curated/), instead
  of wherever the metastore's warehouse directory happens to be. Other catalogs (the domains'
  PostgreSQL databases) get a plain CREATE SCHEMA, as before. An existing schema is never altered.
#}
{% macro trino__create_schema(relation) -%}
  {%- call statement('create_schema') -%}
    {%- if is_galaxy_functions_schema(relation) -%}
      select 1
    {%- elif relation.database | lower == 'hive' -%}
      create schema if not exists {{ relation.without_identifier() }}
      with (location = '{{ lake_schema_location(relation.schema) }}')
    {%- else -%}
      create schema if not exists {{ relation.without_identifier() }}
    {%- endif -%}
  {%- endcall -%}
{% endmacro %}


{# Where a lake schema lives: s3a://<bucket>/<schema>/ #}
{% macro lake_schema_location(schema) -%}
  {%- set bucket = var('lake_bucket', 'datalake') | trim -%}
  {%- if not bucket or '/' in bucket or "'" in bucket -%}
    {%- do exceptions.raise_compiler_error("var lake_bucket must be a bare S3 bucket name such as datalake, got '" ~ bucket ~ "'") -%}
  {%- endif -%}
  s3a://{{ bucket }}/{{ schema | lower }}/
{%- endmacro %}
