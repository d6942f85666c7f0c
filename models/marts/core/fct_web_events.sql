-- Every event with its customer. Events of a device are attributed through the device's
-- record: anonymous browsing before a login belongs to the customer who later logged in on
-- that device (unless the device is shared, see int_identity__excluded_links).
with

events as (

    select * from {{ ref('stg_web__events') }}

),

record_customers as (

    select * from {{ ref('int_identity__record_customers') }}
    where source_table = 'web_events'

),

final as (

    select
        events.event_id,
        record_customers.customer_id,
        events.anonymous_id,
        events.shop_account_id,
        events.event_type,
        events.occurred_at,
        cast(events.occurred_at as date) as event_date,
        events.page_url,
        events.referrer,
        events.utm_source,
        events.utm_medium,
        events.utm_campaign,
        events.device_type,
        events.os,
        events.country_code,
        events.product_id,
        events.category,
        events.price,
        events.scroll_depth_pct,
        events.engaged_seconds,
        events.properties_json
    from events
    left join record_customers
        on
            record_customers.record_id
            = 'web_events|' || events.anonymous_id || '|' || coalesce(events.shop_account_id, '')
            || '|' || coalesce(events.email_hash, '')

)

select * from final
