-- Cross-domain product: the journey from lead to customer, one row per lead that became a
-- customer. A lead became a customer when a customer has its (lower-cased, trimmed) email and
-- signed up at or after the lead was captured; a lead captured after the signup touched an
-- existing customer and is left out. Built only from the domains' public products.
with leads as (
    select lead_id, email, lead_source, lead_status, campaign_id, lead_created_at
    from {{ ref('mart_marketing__leads') }}
),

customers as (
    select customer_id, email, signed_up_at, signup_date
    from {{ ref('mart_sales__customers') }}
),

campaigns as (
    select campaign_id, campaign_name, channel
    from {{ ref('mart_marketing__campaign_performance') }}
),

lifetime_value as (
    select customer_id, first_order_date
    from {{ ref('mart_sales__customer_lifetime_value') }}
)

select
    l.lead_id,
    c.customer_id,
    l.lead_source,
    l.lead_status,
    l.campaign_id,
    cp.campaign_name,
    cp.channel,
    cast(l.lead_created_at as timestamp(3))                                         as lead_created_at,
    cast(c.signed_up_at as timestamp(3))                                            as signed_up_at,
    cast(date_diff('day', cast(l.lead_created_at as date), c.signup_date) as integer) as days_lead_to_signup,
    v.first_order_date,
    cast(date_diff('day', c.signup_date, v.first_order_date) as integer)            as days_signup_to_first_order,
    cast(date_diff('day', cast(l.lead_created_at as date), v.first_order_date) as integer) as days_lead_to_first_order
from leads as l
inner join customers as c
    on c.email = l.email
   and c.signed_up_at >= l.lead_created_at
left join campaigns as cp on cp.campaign_id = l.campaign_id
left join lifetime_value as v on v.customer_id = c.customer_id
