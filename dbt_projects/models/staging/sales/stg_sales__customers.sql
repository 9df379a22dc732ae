-- One row per customer of sales_db, lightly cleaned: trimmed text, lower-cased email and segment,
-- an empty country as null, created_at named for what it is (the signup).
select
    cast(customer_id as integer)                          as customer_id,
    cast(trim(customer_name) as varchar(200))             as customer_name,
    cast(lower(trim(email)) as varchar(320))              as email,
    cast(nullif(trim(country), '') as varchar(100))       as country,
    cast(lower(trim(segment)) as varchar(50))             as segment,
    cast(created_at as timestamp(6))                      as signed_up_at,
    cast(created_at as date)                              as signup_date
from {{ source('sales', 'customers') }}
