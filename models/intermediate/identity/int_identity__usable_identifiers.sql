-- The one place that decides which identifiers the graph may use: every record identifier
-- except those int_identity__excluded_identifiers keeps out.
with

identifiers as (

    select * from {{ ref('int_identity__record_identifiers') }}

),

excluded as (

    select * from {{ ref('int_identity__excluded_identifiers') }}

),

final as (

    select identifiers.*
    from identifiers
    left join excluded
        on
            identifiers.identifier_type = excluded.identifier_type
            and identifiers.identifier_value = excluded.identifier_value
    where excluded.identifier_value is null

)

select * from final
