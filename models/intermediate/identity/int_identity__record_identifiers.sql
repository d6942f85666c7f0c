with

records as (

    select * from {{ ref('int_identity__matching_records') }}

),

blocklist as (

    select * from {{ ref('identity_blocklist') }}

),

unpivoted as (

    select
        record_id,
        source_table,
        source_record_id,
        source_system,
        'email' as identifier_type,
        email_hash as identifier_value,
        email as identifier_text
    from records
    where email_hash is not null
    union all
    select
        record_id,
        source_table,
        source_record_id,
        source_system,
        'phone' as identifier_type,
        phone_hash as identifier_value,
        phone as identifier_text
    from records
    where phone_hash is not null
    union all
    select
        record_id,
        source_table,
        source_record_id,
        source_system,
        'shop_account' as identifier_type,
        shop_account_id as identifier_value,
        shop_account_id as identifier_text
    from records
    where shop_account_id is not null
    union all
    select
        record_id,
        source_table,
        source_record_id,
        source_system,
        'device' as identifier_type,
        anonymous_id as identifier_value,
        anonymous_id as identifier_text
    from records
    where anonymous_id is not null

),

blocklisted as (

    select
        unpivoted.record_id,
        unpivoted.identifier_type,
        min(blocklist.reason) as blocklist_reason
    from unpivoted
    inner join blocklist
        on
            unpivoted.identifier_type = blocklist.identifier_type
            and unpivoted.identifier_text like blocklist.pattern
    group by unpivoted.record_id, unpivoted.identifier_type

),

-- Cleartext stays out: email and phone leave this model as salted hashes only.
final as (

    select
        unpivoted.record_id,
        unpivoted.source_table,
        unpivoted.source_record_id,
        unpivoted.source_system,
        unpivoted.identifier_type,
        unpivoted.identifier_value,
        blocklisted.blocklist_reason
    from unpivoted
    left join blocklisted
        on
            unpivoted.record_id = blocklisted.record_id
            and unpivoted.identifier_type = blocklisted.identifier_type

)

select * from final
