{#
  The model has exactly as many rows as another relation (e.g. one row per customer).
    data_tests:
      - row_count_matches:
          arguments: {compare_model: "ref('mart_sales__customers')"}
#}
{% test row_count_matches(model, compare_model) %}
with counts as (
    select
        (select count(*) from {{ model }}) as model_rows,
        (select count(*) from {{ compare_model }}) as compare_rows
)
select *
from counts
where model_rows <> compare_rows
{% endtest %}
