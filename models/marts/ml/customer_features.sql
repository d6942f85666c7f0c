-- One row per (not erased) customer: the numeric and categorical features the clustering
-- asset (ml/) reads, as of as_of_date. Numeric features are null only where the business lacks
-- the source (no orders, no events: see recency_days); customers without
-- orders, visits or tickets get the documented neutral value (see the column docs).
with

profile as (

    select * from {{ ref('customer_profile') }}

),

final as (

    select
        customer_id,
        as_of_date,
        not is_prospect as has_orders,
        tenure_days,
        -- Without an order: as long ago as the customer was first seen. A business with no
        -- orders at all has no recency: null for everyone, and clustering leaves it out.
        case
            when count(recency_days) over () > 0 then coalesce(recency_days, tenure_days)
        end as recency_days,
        frequency,
        cast(monetary as double) as monetary,
        cast(coalesce(average_order_value, 0) as double) as average_order_value,
        cast(coalesce(max_order_amount, 0) as double) as max_order_amount,
        coalesce(discounted_order_share, 0) as discounted_order_share,
        orders_30d,
        orders_90d,
        coalesce(sessions_30d, 0) as sessions_30d,
        coalesce(sessions_90d, 0) as sessions_90d,
        coalesce(product_views_90d, 0) as product_views_90d,
        coalesce(cart_adds_30d, 0) as cart_adds_30d,
        coalesce(purchases_90d, 0) as purchases_90d,
        coalesce(conversion_rate_90d, 0) as conversion_rate_90d,
        coalesce(cart_abandonments_30d, 0) as cart_abandonments_30d,
        cast(coalesce(engaged_seconds_30d, 0) as double) as engaged_seconds_30d,
        -- Never visited: as long ago as the customer was first seen. A business with no web
        -- or app events has no visits: null for everyone, and clustering leaves it out.
        case
            when count(days_since_last_visit) over () > 0
                then coalesce(days_since_last_visit, tenure_days)
        end as days_since_last_visit,
        coalesce(engagement_score, 0) as engagement_score,
        coalesce(top_category_share_90d, 0) as top_category_share_90d,
        coalesce(tickets_90d, 0) as tickets_90d,
        avg_satisfaction_90d,
        coalesce(negative_ticket_share_90d, 0) as negative_ticket_share_90d,
        coalesce(preferred_device_type, 'none') as preferred_device_type,
        coalesce(preferred_channel_group, 'none') as preferred_channel_group,
        coalesce(top_category, 'none') as top_category
    from profile

)

select * from final
