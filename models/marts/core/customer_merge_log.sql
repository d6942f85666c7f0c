-- Every change of customer id between runs: which id records left, which they joined, why,
-- and in which dbt run. merge: the old id no longer exists (its records joined another
-- customer); split: the old id lives on and some of its records left it.
with

history as (

    select * from {{ ref('int_identity__customer_id_history') }}

),

current_customers as (

    select distinct customer_id
    from {{ ref('int_identity__record_customers') }}
    where customer_id is not null

),

sequenced as (

    select
        record_id,
        customer_id,
        run_id,
        assigned_at,
        lag(customer_id) over (
            partition by record_id order by assigned_at, run_id
        ) as previous_customer_id
    from history

),

moves as (

    select
        previous_customer_id as old_customer_id,
        customer_id as new_customer_id,
        run_id,
        assigned_at as changed_at,
        cast(count(*) as bigint) as records_moved
    from sequenced
    where previous_customer_id is not null
    group by previous_customer_id, customer_id, run_id, assigned_at

),

final as (

    select
        {{ dbt.hash("moves.old_customer_id || '|' || moves.new_customer_id || '|' || moves.run_id") }}
            as merge_log_id,
        moves.old_customer_id,
        moves.new_customer_id,
        case when current_customers.customer_id is null then 'merge' else 'split' end as reason,
        moves.run_id,
        moves.changed_at,
        moves.records_moved
    from moves
    left join current_customers on moves.old_customer_id = current_customers.customer_id

)

select * from final
