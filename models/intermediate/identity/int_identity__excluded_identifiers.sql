with

identifiers as (

    select * from {{ ref('int_identity__record_identifiers') }}

),

-- The shop account each record carries (the graph's account nodes).
record_accounts as (

    select
        record_id,
        identifier_value as shop_account_id
    from {{ ref('int_identity__record_identifiers') }}
    where identifier_type = 'shop_account'

),

-- Records carrying each identifier, per source table and system, in one pass (for the
-- records of one CRM system that carry it: one person has one record per system). A record
-- carries one identifier of each type, so counting rows counts records.
per_system as (

    select
        identifier_type,
        identifier_value,
        source_table,
        source_system,
        max(blocklist_reason) as blocklist_reason,
        count(*) as record_count
    from identifiers
    group by identifier_type, identifier_value, source_table, source_system

),

-- How many distinct shop accounts each identifier's records carry: one person has one.
account_links as (

    select
        carried.identifier_type,
        carried.identifier_value,
        count(distinct record_accounts.shop_account_id) as linked_accounts
    from {{ ref('int_identity__record_identifiers') }} as carried
    inner join record_accounts on carried.record_id = record_accounts.record_id
    where carried.identifier_type <> 'shop_account'
    group by carried.identifier_type, carried.identifier_value

),

stats as (

    select
        per_system.identifier_type,
        per_system.identifier_value,
        max(per_system.blocklist_reason) as blocklist_reason,
        coalesce(max(account_links.linked_accounts), 0) as linked_accounts,
        coalesce(
            max(case when per_system.source_table = 'crm_contacts' then per_system.record_count end),
            0
        ) as max_records_in_one_system,
        sum(per_system.record_count) as record_count
    from per_system
    left join account_links
        on
            per_system.identifier_type = account_links.identifier_type
            and per_system.identifier_value = account_links.identifier_value
    group by per_system.identifier_type, per_system.identifier_value

),

final as (

    select
        identifier_type,
        identifier_value,
        case
            when blocklist_reason is not null then 'blocklist: ' || blocklist_reason
            when
                identifier_type = 'device'
                and linked_accounts > {{ var('identity_max_accounts_per_device') }}
                then
                    'shared device: ' || cast(linked_accounts as {{ dbt.type_string() }})
                    || ' shop accounts'
            when
                identifier_type <> 'device'
                and linked_accounts > {{ var('identity_max_accounts_per_identifier') }}
                then
                    'linked to ' || cast(linked_accounts as {{ dbt.type_string() }})
                    || ' shop accounts'
            when max_records_in_one_system > {{ var('identity_max_records_per_system') }}
                then
                    'on ' || cast(max_records_in_one_system as {{ dbt.type_string() }})
                    || ' records of one CRM system'
        end as exclusion_reason,
        linked_accounts,
        max_records_in_one_system,
        record_count
    from stats

)

select * from final
where exclusion_reason is not null
