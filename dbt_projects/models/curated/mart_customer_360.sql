-- Cross-domain product: the customer 360, one row per customer: who they are, their lifetime
-- value facts, and their marketing touch (the first lead that preceded their signup, if any).
-- Built only from public products.
with customers as (
    select customer_id, customer_name, email, country, segment, signed_up_at
    from {{ ref('mart_sales__customers') }}
),

lifetime_value as (
    select
        customer_id, order_count, revenue_order_count, lifetime_revenue, avg_order_value,
        first_order_date, last_order_date, days_since_last_order, value_tier
    from {{ ref('mart_sales__customer_lifetime_value') }}
),

touches as (
    select
        customer_id,
        lead_id,
        lead_source,
        campaign_id,
        campaign_name,
        channel,
        lead_created_at,
        days_lead_to_signup,
        count(*) over (partition by customer_id)                                          as matched_lead_count,
        row_number() over (partition by customer_id order by lead_created_at, lead_id)    as touch_rank
    from {{ ref('mart_lead_to_customer_journey') }}
),

first_touch as (
    select *
    from touches
    where touch_rank = 1
)

select
    c.customer_id,
    c.customer_name,
    c.email,
    c.country,
    c.segment,
    cast(c.signed_up_at as timestamp(3))                   as signed_up_at,
    v.order_count,
    v.revenue_order_count,
    v.lifetime_revenue,
    v.avg_order_value,
    v.first_order_date,
    v.last_order_date,
    v.days_since_last_order,
    v.value_tier,
    t.lead_id is not null                                  as is_marketing_sourced,
    cast(coalesce(t.matched_lead_count, 0) as bigint)      as matched_lead_count,
    t.lead_id                                              as first_touch_lead_id,
    t.lead_source                                          as first_touch_source,
    t.campaign_id                                          as first_touch_campaign_id,
    t.campaign_name                                        as first_touch_campaign_name,
    t.channel                                              as first_touch_channel,
    t.lead_created_at                                      as first_touch_at,
    t.days_lead_to_signup
from customers as c
left join lifetime_value as v on v.customer_id = c.customer_id
left join first_touch as t on t.customer_id = c.customer_id
