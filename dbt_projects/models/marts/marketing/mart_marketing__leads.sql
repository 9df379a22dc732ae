-- Data product of the marketing domain: the lead register, one row per lead. It publishes the
-- email (lower-cased, trimmed) so that other domains can match leads to their own records.
select
    lead_id,
    email,
    lead_source,
    campaign_id,
    lead_status,
    lead_created_at
from {{ ref('stg_marketing__leads') }}
