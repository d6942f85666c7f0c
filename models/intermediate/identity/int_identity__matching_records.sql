{{ config(materialized='view') }}

-- What identity resolution reads of each record: int_identity__records without the device
-- records' last-seen time and country, which move with every new event of a known device and
-- which only the golden record uses. The matching and the graph (cached_table models) read
-- this view, so a run that brings only new events on known devices leaves their inputs, and
-- their tables, as they were.
with

records as (

    select * from {{ ref('int_identity__records') }}

),

final as (

    select
        record_id,
        source_table,
        source_record_id,
        source_system,
        email,
        email_hash,
        phone,
        phone_hash,
        shop_account_id,
        anonymous_id,
        first_name,
        last_name,
        date_of_birth,
        city,
        street,
        postcode,
        first_seen_at
    from records

)

select * from final
