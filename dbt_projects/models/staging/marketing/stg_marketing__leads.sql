-- One row per lead of marketing_db, lightly cleaned: lower-cased, trimmed email (the key that
-- matches a lead to a customer), prefixed source/status/creation columns.
select
    cast(lead_id as integer)                              as lead_id,
    cast(lower(trim(email)) as varchar(320))              as email,
    cast(lower(trim(source)) as varchar(50))              as lead_source,
    cast(campaign_id as integer)                          as campaign_id,
    cast(lower(trim(status)) as varchar(20))              as lead_status,
    cast(created_at as timestamp(6))                      as lead_created_at
from {{ source('marketing', 'leads') }}
