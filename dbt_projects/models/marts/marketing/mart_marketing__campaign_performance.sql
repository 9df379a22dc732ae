-- Data product of the marketing domain: campaign performance, one row per campaign (campaigns
-- without leads included). Rates and costs are null where their denominator is zero or the
-- budget unknown.
with campaigns as (
    select campaign_id, campaign_name, channel, budget, start_date, end_date
    from {{ ref('stg_marketing__campaigns') }}
),

leads as (
    select campaign_id, lead_status
    from {{ ref('stg_marketing__leads') }}
    where campaign_id is not null
),

per_campaign as (
    select
        campaign_id,
        count(*)                                                    as lead_count,
        count_if(lead_status = 'converted')                         as converted_lead_count,
        count_if(lead_status = 'lost')                              as lost_lead_count,
        count_if(lead_status in ('new', 'contacted', 'qualified'))  as open_lead_count
    from leads
    group by campaign_id
),

joined as (
    select
        c.campaign_id,
        c.campaign_name,
        c.channel,
        c.start_date,
        c.end_date,
        c.budget,
        cast(coalesce(p.lead_count, 0) as bigint)           as lead_count,
        cast(coalesce(p.converted_lead_count, 0) as bigint) as converted_lead_count,
        cast(coalesce(p.lost_lead_count, 0) as bigint)      as lost_lead_count,
        cast(coalesce(p.open_lead_count, 0) as bigint)      as open_lead_count
    from campaigns as c
    left join per_campaign as p on p.campaign_id = c.campaign_id
)

select
    campaign_id,
    campaign_name,
    channel,
    start_date,
    end_date,
    budget,
    lead_count,
    converted_lead_count,
    lost_lead_count,
    open_lead_count,
    cast(
        case when lead_count > 0 then cast(converted_lead_count as decimal(20, 6)) / lead_count end
        as decimal(5, 4))                                   as conversion_rate,
    cast(
        case when lead_count > 0 then budget / lead_count end
        as decimal(12, 2))                                  as cost_per_lead,
    cast(
        case when converted_lead_count > 0 then budget / converted_lead_count end
        as decimal(12, 2))                                  as cost_per_conversion
from joined
