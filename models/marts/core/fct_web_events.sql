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
{%- set record_id -%}
    'web_events|' || anonymous_id || '|' || coalesce(shop_account_id, '') || '|'
    || coalesce(email_hash, '')
{%- endset %}

with

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

        select distinct
            history.record_id,
            split_part(history.record_id, '|', 2) as anonymous_id
        from {{ ref('int_identity__customer_id_history') }} as history
        cross join last_run
        where
            history.assigned_at > last_run.max_refreshed_at
            and history.record_id like 'web_events|%'

    ),

    selected_events as (

        -- New events, then the events of reassigned records. Each branch filters before
        -- the record id is built (a whole-table scan otherwise); the staging table is read
        -- in each rather than through a shared CTE, which would be materialized whole.
        select
            *,
            {{ record_id }} as record_id
        from {{ ref('stg_web__events') }}
        where loaded_at > (select last_run.max_loaded_at from last_run)
        union all
        select *
        from (
            select
                *,
                {{ record_id }} as record_id
            from {{ ref('stg_web__events') }}
            where
                loaded_at <= (select last_run.max_loaded_at from last_run)
                and anonymous_id in (select reassigned_records.anonymous_id from reassigned_records)
        ) as reassigned_events
        where record_id in (select reassigned_records.record_id from reassigned_records)

    ),

{% else %}

    selected_events as (

        select
            *,
            {{ record_id }} as record_id
        from {{ ref('stg_web__events') }}

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
