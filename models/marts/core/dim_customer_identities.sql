with

identifiers as (

    select * from {{ ref('int_identity__record_identifiers') }}

),

record_customers as (

    select * from {{ ref('int_identity__record_customers') }}

),

excluded as (

    select * from {{ ref('int_identity__excluded_identifiers') }}

),

-- The records without their last-seen time (which moves with every event): only their
-- source system is read here.
records as (

    select * from {{ ref('int_identity__matching_records') }}

),

-- A record without any identifier still belongs to a customer (a CRM record with only a
-- name and a birth date, matched probabilistically): it gets one row with no identifier.
record_rows as (

    select
        record_customers.record_id,
        identifiers.identifier_type,
        identifiers.identifier_value
    from record_customers
    left join identifiers on record_customers.record_id = identifiers.record_id

),

final as (

    select
        {{ dbt.hash(
            "record_rows.record_id || '|' || coalesce(record_rows.identifier_type, '')"
            ~ " || '|' || coalesce(record_rows.identifier_value, '')"
        ) }} as customer_identity_id,
        record_customers.customer_id,
        record_customers.source_table,
        record_customers.source_record_id,
        record_rows.record_id,
        records.source_system,
        record_rows.identifier_type,
        record_rows.identifier_value,
        record_rows.identifier_type in ('email', 'phone') as is_hashed,
        record_customers.match_type,
        cast(record_customers.match_probability as double) as match_probability,
        excluded.exclusion_reason,
        excluded.exclusion_reason is not null as is_excluded
    from record_rows
    inner join record_customers on record_rows.record_id = record_customers.record_id
    inner join records on record_rows.record_id = records.record_id
    left join excluded
        on
            record_rows.identifier_type = excluded.identifier_type
            and record_rows.identifier_value = excluded.identifier_value

)

select * from final
