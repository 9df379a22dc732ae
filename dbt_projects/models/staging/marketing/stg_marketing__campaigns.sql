-- One row per campaign of marketing_db, with explicit types.
select
    cast(campaign_id as integer)                          as campaign_id,
    cast(trim(campaign_name) as varchar(200))             as campaign_name,
    cast(lower(trim(channel)) as varchar(50))             as channel,
    cast(budget as decimal(12, 2))                        as budget,
    cast(start_date as date)                              as start_date,
    cast(end_date as date)                                as end_date,
    cast(created_at as timestamp(6))                      as campaign_created_at
from {{ source('marketing', 'campaigns') }}
