-- One row per (not erased) customer with everything audiences are defined on: RFM, order
-- metrics, behavior windows, lifecycle and support signals, all as of as_of_date.
with

rfm as (

    select * from {{ ref('customer_rfm') }}

),

behavior as (

    select * from {{ ref('customer_behavior') }}

),

orders as (

    select * from {{ ref('int_segments__customer_orders') }}

),

customers as (

    select * from {{ ref('dim_customers') }}
    where not is_erased

),

final as (

    select
        rfm.customer_id,
        rfm.as_of_date,
        customers.country_code,
        customers.first_seen_at,
        -- A customer first seen after as_of_date (a contact created after the latest order)
        -- is dated to as_of_date: tenure 0, never negative.
        {{ segmint.date_diff(
            'day',
            'least(cast(customers.first_seen_at as date), rfm.as_of_date)',
            'rfm.as_of_date'
        ) }} as tenure_days,
        rfm.recency_days,
        rfm.frequency,
        rfm.monetary,
        rfm.currency_code,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.rfm_cell,
        rfm.rfm_segment,
        rfm.is_prospect,
        coalesce(orders.completed_orders_30d, 0) as orders_30d,
        coalesce(orders.completed_orders_90d, 0) as orders_90d,
        cast(orders.max_order_amount as decimal(18, 2)) as max_order_amount,
        cast(rfm.monetary / nullif(rfm.frequency, 0) as decimal(18, 2)) as average_order_value,
        cast(orders.discounted_order_count as double)
        / nullif(orders.completed_order_count, 0) as discounted_order_share,
        coalesce(orders.cancelled_order_count, 0) as cancelled_order_count,
        coalesce(orders.refunded_order_count, 0) as refunded_order_count,
        behavior.sessions_7d,
        behavior.sessions_30d,
        behavior.sessions_90d,
        behavior.product_views_7d,
        behavior.product_views_30d,
        behavior.product_views_90d,
        behavior.cart_adds_7d,
        behavior.cart_adds_30d,
        behavior.purchases_7d,
        behavior.purchases_30d,
        behavior.purchases_90d,
        behavior.conversion_rate_90d,
        behavior.cart_abandonments_30d,
        behavior.engaged_seconds_30d,
        behavior.days_since_last_visit,
        behavior.preferred_device_type,
        behavior.preferred_channel_group,
        behavior.top_category,
        behavior.top_category_share_90d,
        behavior.engagement_score,
        behavior.is_high_intent_browser,
        behavior.is_cart_abandoner,
        behavior.lifecycle_stage,
        behavior.tickets_90d,
        behavior.avg_satisfaction_90d,
        behavior.negative_ticket_share_90d,
        customers.has_email_marketing_consent,
        customers.has_sms_marketing_consent
    from rfm
    inner join customers on rfm.customer_id = customers.customer_id
    left join behavior on rfm.customer_id = behavior.customer_id
    left join orders on rfm.customer_id = orders.customer_id

)

select * from final
