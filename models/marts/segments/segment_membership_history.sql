-- One row per stay of a customer in a segment, from the snapshot of customer_segments.
-- entered_at / exited_at are the snapshot times (UTC) at which segmint first saw the
-- membership and first saw it gone; re-entering a segment opens a new row. An erased
-- customer's memberships all exit (exit_reason erased).
with

snapshot as (

    select * from {{ ref('snap_customer_segments') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select
        snapshot.dbt_scd_id as membership_stay_id,
        snapshot.membership_id,
        snapshot.customer_id,
        snapshot.segment_type,
        snapshot.segment_name,
        snapshot.segment_key,
        cast(snapshot.dbt_valid_from as timestamp) as entered_at,
        cast(snapshot.dbt_valid_to as timestamp) as exited_at,
        snapshot.dbt_valid_to is null as is_current,
        case
            when snapshot.dbt_valid_to is null then null
            when coalesce(customers.is_erased, false) then 'erased'
            else 'left'
        end as exit_reason,
        snapshot.as_of_date as entered_as_of_date
    from snapshot
    left join customers on snapshot.customer_id = customers.customer_id

)

select * from final
