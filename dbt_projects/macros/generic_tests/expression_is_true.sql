{#
  Every row of the model satisfies a SQL boolean expression (rows where it is false or null fail).
    data_tests:
      - expression_is_true:
          arguments: {expression: "revenue_order_count <= order_count"}
#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not coalesce({{ expression }}, false)
{% endtest %}
