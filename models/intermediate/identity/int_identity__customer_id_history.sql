{{ config(materialized='incremental') }}

-- Append-only history of each record's customer_id: a row when a record first gets an id and
-- whenever its id changes (merge or split). The merge log is read from here.
with

current_assignments as (

    select
        record_id,
        customer_id
    from {{ ref('int_identity__record_customers') }}
    where customer_id is not null

),

{% if is_incremental() %}

previous_assignments as (

    select
        record_id,
        customer_id
    from {{ this }}
    qualify row_number() over (partition by record_id order by assigned_at desc, run_id desc) = 1

),

changed as (

    select current_assignments.*
    from current_assignments
    left join previous_assignments
        on current_assignments.record_id = previous_assignments.record_id
    where
        previous_assignments.record_id is null
        or previous_assignments.customer_id <> current_assignments.customer_id

),

{% else %}

    changed as (

        select * from current_assignments

    ),

{% endif %}

final as (

    select
        record_id,
        customer_id,
        '{{ invocation_id }}' as run_id,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as assigned_at
    from changed

)

select * from final
