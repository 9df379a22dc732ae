-- One row per order of sales_db, with explicit types and prefixed status/creation columns.
select
    cast(order_id as integer)                             as order_id,
    cast(customer_id as integer)                          as customer_id,
    cast(order_date as date)                              as order_date,
    cast(total_amount as decimal(12, 2))                  as total_amount,
    cast(lower(trim(status)) as varchar(20))              as order_status,
    cast(lower(trim(status)) not in ('cancelled', 'refunded') as boolean) as is_revenue,
    cast(created_at as timestamp(6))                      as order_created_at
from {{ source('sales', 'orders') }}
