-- Moves between segments of the exclusive segment types (rfm, lifecycle, cluster: a customer is in
-- at most one segment of each at a time), counted per month of the move. A customer's
-- first segment of a type comes from '(none)'; a stay that ends without a next one of the
-- same type goes to '(none)' (the customer left every segment of the type, or was erased).
with

history as (

    select * from {{ ref('segment_membership_history') }}
    where segment_type in ('rfm', 'lifecycle', 'cluster')

),

ordered as (

    select
        customer_id,
        segment_type,
        segment_name,
        entered_at,
        exited_at,
        lag(segment_name) over (
            partition by customer_id, segment_type order by entered_at, segment_name
        ) as previous_segment_name,
        lag(exited_at) over (
            partition by customer_id, segment_type order by entered_at, segment_name
        ) as previous_exited_at,
        lead(entered_at) over (
            partition by customer_id, segment_type order by entered_at, segment_name
        ) as next_entered_at
    from history

),

moves as (

    select
        segment_type,
        case
            when previous_exited_at < entered_at then '(none)'
            else coalesce(previous_segment_name, '(none)')
        end as from_segment,
        segment_name as to_segment,
        entered_at as moved_at
    from ordered
    union all
    select
        segment_type,
        segment_name as from_segment,
        '(none)' as to_segment,
        exited_at as moved_at
    from ordered
    where exited_at is not null and (next_entered_at is null or next_entered_at > exited_at)

),

dated as (

    select
        cast({{ dbt.date_trunc('month', 'moved_at') }} as date) as period_start,
        segment_type,
        from_segment,
        to_segment
    from moves

),

final as (

    select
        period_start,
        segment_type,
        from_segment,
        to_segment,
        count(*) as customer_count
    from dated
    group by period_start, segment_type, from_segment, to_segment

)

select * from final
