-- Data product of the sales domain: the customer directory, one row per customer. It publishes
-- the email (lower-cased, trimmed) so that other domains can match their own records to customers.
select
    customer_id,
    customer_name,
    email,
    country,
    segment,
    signed_up_at,
    signup_date
from {{ ref('stg_sales__customers') }}
