{{
    config(
        materialized='incremental',
        unique_key='anonymous_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

-- Sessions of each device (anonymous_id) over the stitched events. A session starts at a
-- device's first event, after more than var session_inactivity_minutes without an event, and
-- when an event arrives from a campaign other than the one before. The channel comes from
-- the session's first event: its campaign medium, else its referrer host (seed
-- channel_groupings), else Direct.
-- Incremental: for every device with events written since the last run, the sessions from
-- the last one that began at or before its earliest new event are rebuilt from the events
-- (a late event can join or split sessions there); the device's earlier sessions are kept
-- as they were, and the device's sessions are replaced by the two together.
{%- set gap_seconds = var('session_inactivity_minutes') * 60 %}

with

events as (

    select * from {{ ref('fct_web_events') }}

),

channel_groupings as (

    select * from {{ ref('channel_groupings') }}

),

{% if is_incremental() %}

    changed_devices as (

        select
            anonymous_id,
            min(occurred_at) as first_changed_at
        from events
        where refreshed_at > (
            select coalesce(max(refreshed_at), cast('1900-01-01' as timestamp)) from {{ this }}
        )
        group by anonymous_id

    ),

    cutoffs as (

        -- From the start of the device's last session that began at or before its first
        -- changed event: earlier sessions cannot change and are kept as they are.
        select
            changed_devices.anonymous_id,
            coalesce(
                max(previous.session_start_at), min(changed_devices.first_changed_at)
            ) as recompute_from
        from changed_devices
        left join {{ this }} as previous
            on
                changed_devices.anonymous_id = previous.anonymous_id
                and previous.session_start_at <= changed_devices.first_changed_at
        group by changed_devices.anonymous_id

    ),

    kept_sessions as (

        select previous.*
        from {{ this }} as previous
        inner join cutoffs on previous.anonymous_id = cutoffs.anonymous_id
        where previous.session_start_at < cutoffs.recompute_from

    ),

    device_events as (

        select events.*
        from events
        inner join cutoffs on events.anonymous_id = cutoffs.anonymous_id
        where events.occurred_at >= cutoffs.recompute_from

    ),

{% else %}

    device_events as (

        select * from events

    ),

{% endif %}

with_previous as (

    select
        *,
        lag(occurred_at) over (
            partition by anonymous_id order by occurred_at, event_id
        ) as previous_occurred_at,
        lag(utm_campaign) over (
            partition by anonymous_id order by occurred_at, event_id
        ) as previous_campaign
    from device_events

),

flagged as (

    select
        *,
        case
            when previous_occurred_at is null then 1
            when
                {{ segmint.date_diff('second', 'previous_occurred_at', 'occurred_at') }} > {{ gap_seconds }}
                then 1
            when utm_campaign is not null and utm_campaign <> coalesce(previous_campaign, '') then 1
            else 0
        end as is_session_start
    from with_previous

),

numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by anonymous_id order by occurred_at, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from flagged

),

sessions as (

    select
        anonymous_id,
        session_number,
        min(occurred_at) as session_start_at,
        max(occurred_at) as session_end_at,
        min_by(event_id, occurred_at) as first_event_id,
        max_by(customer_id, case when customer_id is not null then occurred_at end) as customer_id,
        count(*) as event_count,
        count(case when event_type = 'page_view' then 1 end) as page_views,
        count(case when event_type = 'product_view' then 1 end) as product_views,
        count(case when event_type = 'add_to_cart' then 1 end) as cart_adds,
        count(case when event_type = 'checkout_start' then 1 end) as checkouts,
        count(case when event_type = 'purchase' then 1 end) as purchases,
        max(scroll_depth_pct) as max_scroll_depth_pct,
        coalesce(sum(engaged_seconds), 0) as engaged_seconds,
        min_by(page_url, occurred_at) as landing_page_url,
        min_by(utm_source, occurred_at) as utm_source,
        min_by(utm_medium, occurred_at) as utm_medium,
        min_by(utm_campaign, occurred_at) as utm_campaign,
        min_by(split_part(referrer, '/', 3), occurred_at) as referrer_host,
        min_by(device_type, occurred_at) as device_type
    from numbered
    group by anonymous_id, session_number

),

recomputed as (

    select
        'ses_' || substr({{ dbt.hash("sessions.anonymous_id || '|' || sessions.first_event_id") }}, 1, 16)
            as session_id,
        sessions.anonymous_id,
        sessions.customer_id,
        sessions.session_start_at,
        sessions.session_end_at,
        cast(sessions.session_start_at as date) as session_date,
        {{ segmint.date_diff('second', 'sessions.session_start_at', 'sessions.session_end_at') }}
            as duration_seconds,
        sessions.event_count,
        sessions.page_views,
        sessions.product_views,
        sessions.cart_adds,
        sessions.checkouts,
        sessions.purchases,
        sessions.event_count = 1 as is_bounce,
        sessions.cart_adds > 0 as has_cart_add,
        sessions.purchases > 0 as has_purchase,
        sessions.cart_adds > 0 and sessions.purchases = 0 as is_cart_abandoned,
        sessions.max_scroll_depth_pct,
        sessions.engaged_seconds,
        sessions.landing_page_url,
        sessions.utm_source,
        sessions.utm_medium,
        sessions.utm_campaign,
        sessions.referrer_host,
        coalesce(
            by_medium.channel_group,
            case when sessions.utm_medium is not null then 'Other Campaign' end,
            by_referrer.channel_group,
            case when sessions.referrer_host is not null then 'Referral' end,
            'Direct'
        ) as channel_group,
        sessions.device_type,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as refreshed_at
    from sessions
    left join channel_groupings as by_medium
        on
            by_medium.match_field = 'utm_medium'
            and sessions.utm_medium = by_medium.match_value
    left join channel_groupings as by_referrer
        on
            by_referrer.match_field = 'referrer_host'
            and sessions.referrer_host = by_referrer.match_value

),

final as (

    select * from recomputed
    {% if is_incremental() -%}
        union all
        select * from kept_sessions
    {%- endif %}

)

select * from final
