-- One row per segment membership with the member's order and session figures as of
-- as_of_date: the base of the semantic layer's segment KPIs (customers, revenue, average
-- order value, conversion per segment; see _semantic.yml).
with

segments as (

    select * from {{ ref('customer_segments') }}

),

profile as (

    select * from {{ ref('customer_profile') }}

),

final as (

    select
        segments.membership_id,
        segments.customer_id,
        segments.segment_type,
        segments.segment_name,
        segments.as_of_date,
        profile.monetary as revenue,
        profile.currency_code,
        profile.frequency as completed_orders,
        profile.sessions_90d,
        cast(round(coalesce(profile.sessions_90d * profile.conversion_rate_90d, 0)) as bigint)
            as converted_sessions_90d
    from segments
    inner join profile on segments.customer_id = profile.customer_id

)

select * from final
