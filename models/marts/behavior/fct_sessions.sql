{{
    config(
        materialized='incremental',
        unique_key='session_id',
        incremental_strategy='replace_overlapping',
        overlap_partition='anonymous_id',
        overlap_start='session_start_at',
        overlap_end='session_end_at',
        on_schema_change='append_new_columns',
    )
}}

-- Sessions of each device (anonymous_id) over the stitched events. A session starts at a
-- device's first event, after more than var session_inactivity_minutes without an event, and
-- when an event arrives from a campaign other than the one before. The channel comes from
-- the session's first event: its campaign medium, else its referrer host (seed
-- channel_groupings), else Direct.
-- Incremental: a changed event (new, or re-attributed by an identity merge or split) can
-- only join, extend or split the stored sessions of its device within the inactivity gap of
-- it. Those sessions (and any stored session sharing a boundary instant with them) are
-- rebuilt from their events and the changed ones; every other stored session stays as it
-- is, and separates the rebuilt stretches of a device. The incremental strategy
-- replace_overlapping (macros/) deletes the stored sessions that overlap a rebuilt one and
-- inserts the rebuilt ones.
{%- set gap_seconds = var('session_inactivity_minutes') * 60 %}

with

channel_groupings as (

    select * from {{ ref('channel_groupings') }}

),

{% if is_incremental() %}

    last_refresh as (

        select coalesce(max(refreshed_at), cast('1900-01-01' as timestamp)) as refreshed_at
        from {{ this }}

    ),

    changed_events as (

        select
            anonymous_id,
            occurred_at
        from {{ ref('fct_web_events') }}
        where refreshed_at > (select last_refresh.refreshed_at from last_refresh)

    ),

    changed_devices as (

        select anonymous_id
        from changed_events
        group by anonymous_id

    ),

    device_sessions as (

        -- The stored sessions of the changed devices, read once: the steps below work on
        -- these few rows. (Range-joining the whole table instead made DuckDB estimate the
        -- affected sessions as the larger side and hash the 4M events: 2x slower at 150k.)
        select
            session_id,
            anonymous_id,
            session_start_at,
            session_end_at
        from {{ this }}
        where anonymous_id in (select changed_devices.anonymous_id from changed_devices)

    ),

    touched_sessions as (

        -- Stored sessions within the inactivity gap of a changed event.
        select distinct
            device_sessions.session_id,
            device_sessions.anonymous_id,
            device_sessions.session_start_at,
            device_sessions.session_end_at
        from device_sessions
        inner join changed_events
            on
                device_sessions.anonymous_id = changed_events.anonymous_id
                and device_sessions.session_start_at
                <= {{ dbt.dateadd('second', gap_seconds, 'changed_events.occurred_at') }}
                and device_sessions.session_end_at
                >= {{ dbt.dateadd('second', -gap_seconds, 'changed_events.occurred_at') }}

    ),

    affected_sessions as (

        -- And stored sessions that share an instant with those (a campaign change within
        -- the same second ends one session and starts the next).
        select distinct
            device_sessions.session_id,
            device_sessions.anonymous_id,
            device_sessions.session_start_at,
            device_sessions.session_end_at
        from device_sessions
        inner join touched_sessions
            on
                device_sessions.anonymous_id = touched_sessions.anonymous_id
                and device_sessions.session_start_at <= touched_sessions.session_end_at
                and device_sessions.session_end_at >= touched_sessions.session_start_at

    ),

    kept_sessions as (

        select
            device_sessions.anonymous_id,
            device_sessions.session_start_at
        from device_sessions
        left join affected_sessions on device_sessions.session_id = affected_sessions.session_id
        where affected_sessions.session_id is null

    ),

    device_event_keys as (

        -- Keys of the changed devices' events. Reading whole event rows to find the few
        -- needed costs more than fetching them by id below.
        select
            event_id,
            anonymous_id,
            occurred_at,
            refreshed_at
        from {{ ref('fct_web_events') }}
        where anonymous_id in (select changed_devices.anonymous_id from changed_devices)

    ),

    rebuilt_event_ids as (

        -- The changed events, and the stored events of the affected sessions.
        select distinct
            device_event_keys.event_id,
            device_event_keys.anonymous_id,
            device_event_keys.occurred_at
        from device_event_keys
        left join affected_sessions
            on
                device_event_keys.anonymous_id = affected_sessions.anonymous_id
                and device_event_keys.occurred_at >= affected_sessions.session_start_at
                and device_event_keys.occurred_at <= affected_sessions.session_end_at
        where
            device_event_keys.refreshed_at > (select last_refresh.refreshed_at from last_refresh)
            or affected_sessions.session_id is not null

    ),

    event_stretches as (

        -- Kept sessions separate a device's rebuilt events into stretches: each rebuilt
        -- event belongs to the stretch after the last kept session that began before it.
        select
            rebuilt_event_ids.event_id,
            max(kept_sessions.session_start_at) as stretch_after
        from rebuilt_event_ids
        left join kept_sessions
            on
                rebuilt_event_ids.anonymous_id = kept_sessions.anonymous_id
                and kept_sessions.session_start_at <= rebuilt_event_ids.occurred_at
        group by rebuilt_event_ids.event_id

    ),

    device_events as (

        select
            events.*,
            event_stretches.stretch_after
        from {{ ref('fct_web_events') }} as events
        inner join event_stretches on events.event_id = event_stretches.event_id

    ),

{% else %}

    device_events as (

        select
            *,
            cast(null as timestamp) as stretch_after
        from {{ ref('fct_web_events') }}

    ),

{% endif %}

with_previous as (

    select
        *,
        lag(occurred_at) over (
            partition by anonymous_id, stretch_after order by occurred_at, event_id
        ) as previous_occurred_at,
        lag(utm_campaign) over (
            partition by anonymous_id, stretch_after order by occurred_at, event_id
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
            partition by anonymous_id, stretch_after order by occurred_at, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from flagged

),

sessions as (

    select
        anonymous_id,
        stretch_after,
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
    group by anonymous_id, stretch_after, session_number

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

)

select * from final
