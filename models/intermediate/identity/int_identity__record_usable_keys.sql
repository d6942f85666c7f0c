-- Per record, the email and phone hash the graph may use (null when absent or excluded as
-- shared), for the golden record.
with

usable as (

    select * from {{ ref('int_identity__usable_identifiers') }}

),

final as (

    select
        record_id,
        max(case when identifier_type = 'email' then identifier_value end) as email_hash,
        max(case when identifier_type = 'phone' then identifier_value end) as phone_hash
    from usable
    where identifier_type in ('email', 'phone')
    group by record_id

)

select * from final
