with

identifiers as (

    select * from {{ ref('int_identity__record_identifiers') }}

),

excluded as (

    select * from {{ ref('int_identity__excluded_identifiers') }}

),

final as (

    select
        identifiers.record_id,
        identifiers.source_table,
        identifiers.source_record_id,
        identifiers.identifier_type,
        identifiers.identifier_value,
        excluded.exclusion_reason
    from identifiers
    inner join excluded
        on
            identifiers.identifier_type = excluded.identifier_type
            and identifiers.identifier_value = excluded.identifier_value

)

select * from final
