{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

-- depends_on: {{ ref('int_identity__customer_id_history') }}
-- Every event with its customer. Events of a device are attributed through the device's
-- record: anonymous browsing before a login belongs to the customer who later logged in on
-- that device (unless the device is shared, see int_identity__excluded_links).
-- Incremental: a run writes the events loaded since the last run, and re-writes the events
-- of records whose customer changed (merge or split) since then.
with

events as (

    select
        *,
        'web_events|' || anonymous_id || '|' || coalesce(shop_account_id, '')
        || '|' || coalesce(email_hash, '') as record_id
    from {{ ref('stg_web__events') }}

),

record_customers as (

    select * from {{ ref('int_identity__record_customers') }}
    where source_table = 'web_events'

),

{% if is_incremental() %}

    last_run as (

        select
            coalesce(max(loaded_at), cast('1900-01-01' as timestamp)) as max_loaded_at,
            coalesce(max(refreshed_at), cast('1900-01-01' as timestamp)) as max_refreshed_at
        from {{ this }}

    ),

    reassigned_records as (

        select distinct history.record_id
        from {{ ref('int_identity__customer_id_history') }} as history
        cross join last_run
        where history.assigned_at > last_run.max_refreshed_at

    ),

    selected_events as (

        select events.*
        from events
        cross join last_run
        left join reassigned_records on events.record_id = reassigned_records.record_id
        where
            events.loaded_at > last_run.max_loaded_at
            or reassigned_records.record_id is not null

    ),

{% else %}

    selected_events as (

        select * from events

    ),

{% endif %}

final as (

    select
        selected_events.event_id,
        record_customers.customer_id,
        selected_events.anonymous_id,
        selected_events.shop_account_id,
        selected_events.event_type,
        selected_events.occurred_at,
        cast(selected_events.occurred_at as date) as event_date,
        selected_events.page_url,
        selected_events.referrer,
        selected_events.utm_source,
        selected_events.utm_medium,
        selected_events.utm_campaign,
        selected_events.device_type,
        selected_events.os,
        selected_events.country_code,
        selected_events.product_id,
        selected_events.category,
        selected_events.price,
        selected_events.scroll_depth_pct,
        selected_events.engaged_seconds,
        selected_events.properties_json,
        selected_events.loaded_at,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as refreshed_at
    from selected_events
    left join record_customers on selected_events.record_id = record_customers.record_id

)

select * from final
