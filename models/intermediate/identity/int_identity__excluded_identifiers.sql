with

identifiers as (

    select * from {{ ref('int_identity__record_identifiers') }}

),

-- How many distinct shop accounts each identifier's records carry, and how many records of
-- one CRM system carry it: one person has one account and one record per system.
account_links as (

    select
        carried.identifier_type,
        carried.identifier_value,
        count(distinct account_ids.identifier_value) as linked_accounts
    from identifiers as carried
    inner join identifiers as account_ids
        on
            carried.record_id = account_ids.record_id
            and account_ids.identifier_type = 'shop_account'
            and carried.identifier_type <> 'shop_account'
    group by carried.identifier_type, carried.identifier_value

),

system_records as (

    select
        identifier_type,
        identifier_value,
        max(record_count) as max_records_in_one_system
    from (
        select
            identifier_type,
            identifier_value,
            source_system,
            count(*) as record_count
        from identifiers
        where source_table = 'crm_contacts'
        group by identifier_type, identifier_value, source_system
    ) as per_system
    group by identifier_type, identifier_value

),

stats as (

    select
        identifiers.identifier_type,
        identifiers.identifier_value,
        max(identifiers.blocklist_reason) as blocklist_reason,
        coalesce(max(account_links.linked_accounts), 0) as linked_accounts,
        coalesce(max(system_records.max_records_in_one_system), 0) as max_records_in_one_system,
        count(distinct identifiers.record_id) as record_count
    from identifiers
    left join account_links
        on
            identifiers.identifier_type = account_links.identifier_type
            and identifiers.identifier_value = account_links.identifier_value
    left join system_records
        on
            identifiers.identifier_type = system_records.identifier_type
            and identifiers.identifier_value = system_records.identifier_value
    group by identifiers.identifier_type, identifiers.identifier_value

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
