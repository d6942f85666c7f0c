with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

events as (

    select * from {{ ref('stg_web__events') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

tickets as (

    select * from {{ ref('stg_support__tickets') }}

),

contact_records as (

    select
        'crm_contacts|' || contact_id as record_id,
        'crm_contacts' as source_table,
        contact_id as source_record_id,
        source_system,
        email,
        email_hash,
        phone,
        phone_hash,
        case when source_system = 'shop' then source_contact_id end as shop_account_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        first_name,
        last_name,
        date_of_birth,
        city,
        street,
        postcode,
        country_code,
        created_at as first_seen_at,
        updated_at as last_seen_at
    from contacts

),

-- A device's events fall into one record per (device, account, email) combination, so that
-- a device shared by two accounts can be cut without merging the accounts.
device_records as (

    select
        'web_events|' || anonymous_id || '|' || coalesce(shop_account_id, '') || '|'
        || coalesce(email_hash, '') as record_id,
        'web_events' as source_table,
        anonymous_id as source_record_id,
        'web' as source_system,
        email,
        email_hash,
        cast(null as {{ dbt.type_string() }}) as phone,
        cast(null as {{ dbt.type_string() }}) as phone_hash,
        shop_account_id,
        anonymous_id,
        cast(null as {{ dbt.type_string() }}) as first_name,
        cast(null as {{ dbt.type_string() }}) as last_name,
        cast(null as date) as date_of_birth,
        cast(null as {{ dbt.type_string() }}) as city,
        cast(null as {{ dbt.type_string() }}) as street,
        cast(null as {{ dbt.type_string() }}) as postcode,
        max(country_code) as country_code,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at
    from events
    group by anonymous_id, shop_account_id, email, email_hash

),

order_records as (

    select
        'orders|' || order_id as record_id,
        'orders' as source_table,
        order_id as source_record_id,
        coalesce(sales_channel, 'shop') as source_system,
        email,
        email_hash,
        cast(null as {{ dbt.type_string() }}) as phone,
        cast(null as {{ dbt.type_string() }}) as phone_hash,
        shop_account_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        cast(null as {{ dbt.type_string() }}) as first_name,
        cast(null as {{ dbt.type_string() }}) as last_name,
        cast(null as date) as date_of_birth,
        cast(null as {{ dbt.type_string() }}) as city,
        cast(null as {{ dbt.type_string() }}) as street,
        cast(null as {{ dbt.type_string() }}) as postcode,
        cast(null as {{ dbt.type_string() }}) as country_code,
        ordered_at as first_seen_at,
        ordered_at as last_seen_at
    from orders

),

ticket_records as (

    select
        'support_tickets|' || ticket_id as record_id,
        'support_tickets' as source_table,
        ticket_id as source_record_id,
        'support' as source_system,
        email,
        email_hash,
        cast(null as {{ dbt.type_string() }}) as phone,
        cast(null as {{ dbt.type_string() }}) as phone_hash,
        cast(null as {{ dbt.type_string() }}) as shop_account_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        cast(null as {{ dbt.type_string() }}) as first_name,
        cast(null as {{ dbt.type_string() }}) as last_name,
        cast(null as date) as date_of_birth,
        cast(null as {{ dbt.type_string() }}) as city,
        cast(null as {{ dbt.type_string() }}) as street,
        cast(null as {{ dbt.type_string() }}) as postcode,
        cast(null as {{ dbt.type_string() }}) as country_code,
        created_at as first_seen_at,
        created_at as last_seen_at
    from tickets

),

final as (

    select * from contact_records
    union all
    select * from device_records
    union all
    select * from order_records
    union all
    select * from ticket_records

)

select * from final
