-- Behavior per customer as of as_of_date. A window of N days is the N calendar days ending
-- on as_of_date (as_of_date and the N - 1 days before it); nothing after as_of_date counts.
-- Lifecycle from completed orders: prospect (none), new (first order less than
-- lifecycle_new_days ago), active (last order at most lifecycle_active_days ago), at risk
-- (at most lifecycle_churned_days ago), churned (longer ago).
{%- set windows = [7, 30, 90] %}
{%- set weights = var('engagement_weights') %}

with

as_of as (

    select * from {{ ref('int_segments__as_of') }}

),

customers as (

    select customer_id from {{ ref('dim_customers') }}
    where not is_erased

),

all_sessions as (

    select * from {{ ref('fct_sessions') }}

),

orders as (

    select * from {{ ref('int_segments__customer_orders') }}

),

affinity as (

    select * from {{ ref('customer_category_affinity') }}
    where category_rank = 1

),

record_customers as (

    select * from {{ ref('int_identity__record_customers') }}
    where source_table = 'support_tickets'

),

tickets as (

    select * from {{ ref('stg_support__tickets') }}

),

ticket_tones as (

    select * from {{ ref('stg_enrichment__ticket_tones') }}

),

sessions as (

    select
        all_sessions.*,
        {{ segmint.date_diff('day', 'all_sessions.session_date', 'as_of.as_of_date') }} as days_ago
    from all_sessions
    cross join as_of
    where
        all_sessions.customer_id is not null
        and all_sessions.session_start_at < as_of.as_of_end_at

),

session_windows as (

    select
        customer_id,
        {%- for w in windows %}
            count(case when days_ago < {{ w }} then 1 end) as sessions_{{ w }}d,
            cast(coalesce(sum(case when days_ago < {{ w }} then page_views end), 0) as bigint)
                as page_views_{{ w }}d,
            cast(coalesce(sum(case when days_ago < {{ w }} then product_views end), 0) as bigint)
                as product_views_{{ w }}d,
            cast(coalesce(sum(case when days_ago < {{ w }} then cart_adds end), 0) as bigint)
                as cart_adds_{{ w }}d,
            cast(coalesce(sum(case when days_ago < {{ w }} then purchases end), 0) as bigint)
                as purchases_{{ w }}d,
            count(case when days_ago < {{ w }} and has_purchase then 1 end)
                as converted_sessions_{{ w }}d,
            count(case when days_ago < {{ w }} and has_cart_add then 1 end) as cart_sessions_{{ w }}d,
            count(case when days_ago < {{ w }} and is_cart_abandoned then 1 end)
                as cart_abandonments_{{ w }}d,
            avg(case when days_ago < {{ w }} then max_scroll_depth_pct end)
                as avg_scroll_depth_pct_{{ w }}d,
            coalesce(sum(case when days_ago < {{ w }} then engaged_seconds end), 0)
                as engaged_seconds_{{ w }}d,
        {%- endfor %}
        min(days_ago) as days_since_last_visit,
        sum(
            (
                {{ weights['session'] }}
                + {{ weights['product_view'] }} * product_views
                + {{ weights['cart_add'] }} * cart_adds
                + {{ weights['purchase'] }} * purchases
            )
            * power(0.5, days_ago / {{ var('engagement_half_life_days') }}.0)
        ) as engagement_score,
        max(case when is_cart_abandoned then session_start_at end) as last_cart_abandoned_at,
        max(case when has_purchase then session_start_at end) as last_purchase_session_at
    from sessions
    group by customer_id

),

preferred_device as (

    select
        customer_id,
        device_type
    from sessions
    where device_type is not null
    group by customer_id, device_type
    qualify row_number() over (
        partition by customer_id
        order by count(*) desc, max(session_start_at) desc, device_type
    ) = 1

),

preferred_channel as (

    select
        customer_id,
        channel_group
    from sessions
    group by customer_id, channel_group
    qualify row_number() over (
        partition by customer_id
        order by count(*) desc, max(session_start_at) desc, channel_group
    ) = 1

),

support as (

    select
        record_customers.customer_id,
        count(*) as tickets_90d,
        avg(tickets.satisfaction_score) as avg_satisfaction_90d,
        avg(case when ticket_tones.tone = 'negative' then 1.0 when ticket_tones.tone is not null then 0.0 end)
            as negative_ticket_share_90d
    from tickets
    inner join record_customers on tickets.ticket_id = record_customers.source_record_id
    left join ticket_tones on tickets.ticket_id = ticket_tones.ticket_id
    cross join as_of
    where
        tickets.created_at < as_of.as_of_end_at
        and {{ segmint.date_diff('day', 'cast(tickets.created_at as date)', 'as_of.as_of_date') }} < 90
    group by record_customers.customer_id

),

final as (

    select
        customers.customer_id,
        as_of.as_of_date,
        {%- for w in windows %}
            coalesce(session_windows.sessions_{{ w }}d, 0) as sessions_{{ w }}d,
            coalesce(session_windows.page_views_{{ w }}d, 0) as page_views_{{ w }}d,
            coalesce(session_windows.product_views_{{ w }}d, 0) as product_views_{{ w }}d,
            coalesce(session_windows.cart_adds_{{ w }}d, 0) as cart_adds_{{ w }}d,
            coalesce(session_windows.purchases_{{ w }}d, 0) as purchases_{{ w }}d,
            cast(session_windows.converted_sessions_{{ w }}d as double)
            / nullif(session_windows.sessions_{{ w }}d, 0) as conversion_rate_{{ w }}d,
            coalesce(session_windows.cart_abandonments_{{ w }}d, 0) as cart_abandonments_{{ w }}d,
            cast(session_windows.cart_abandonments_{{ w }}d as double)
            / nullif(session_windows.cart_sessions_{{ w }}d, 0) as cart_abandonment_rate_{{ w }}d,
            session_windows.avg_scroll_depth_pct_{{ w }}d,
            coalesce(session_windows.engaged_seconds_{{ w }}d, 0) as engaged_seconds_{{ w }}d,
        {%- endfor %}
        session_windows.days_since_last_visit,
        preferred_device.device_type as preferred_device_type,
        preferred_channel.channel_group as preferred_channel_group,
        affinity.category as top_category,
        affinity.view_share_90d as top_category_share_90d,
        coalesce(session_windows.engagement_score, 0) as engagement_score,
        coalesce(
            session_windows.product_views_7d >= 3
            and session_windows.cart_adds_7d > 0
            and session_windows.purchases_7d = 0,
            false
        ) as is_high_intent_browser,
        coalesce(
            session_windows.cart_abandonments_30d > 0
            and (
                session_windows.last_purchase_session_at is null
                or session_windows.last_purchase_session_at < session_windows.last_cart_abandoned_at
            ),
            false
        ) as is_cart_abandoner,
        case
            when coalesce(orders.completed_order_count, 0) = 0 then 'prospect'
            when
                {{ segmint.date_diff('day', 'orders.first_order_date', 'as_of.as_of_date') }}
                < {{ var('lifecycle_new_days') }}
                then 'new'
            when
                {{ segmint.date_diff('day', 'orders.last_order_date', 'as_of.as_of_date') }}
                <= {{ var('lifecycle_active_days') }}
                then 'active'
            when
                {{ segmint.date_diff('day', 'orders.last_order_date', 'as_of.as_of_date') }}
                <= {{ var('lifecycle_churned_days') }}
                then 'at risk'
            else 'churned'
        end as lifecycle_stage,
        coalesce(support.tickets_90d, 0) as tickets_90d,
        support.avg_satisfaction_90d,
        support.negative_ticket_share_90d
    from customers
    cross join as_of
    left join session_windows on customers.customer_id = session_windows.customer_id
    left join preferred_device on customers.customer_id = preferred_device.customer_id
    left join preferred_channel on customers.customer_id = preferred_channel.customer_id
    left join affinity on customers.customer_id = affinity.customer_id
    left join orders on customers.customer_id = orders.customer_id
    left join support on customers.customer_id = support.customer_id

)

select * from final
