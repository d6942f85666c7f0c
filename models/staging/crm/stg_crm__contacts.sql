with

source as (

    select * from {{ source('crm', 'crm_contacts') }}

),

country_aliases as (

    select * from {{ ref('country_aliases') }}

),

countries as (

    select * from {{ ref('countries') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by lower(trim(source_system)), trim(contact_id)
        order by
            {{ segmint.to_utc_timestamp('updated_at') }} desc,
            _loaded_at desc,
            _source_row desc
    ) = 1

),

with_country as (

    select
        latest.*,
        country_aliases.country_code as resolved_country_code,
        countries.dialing_code
    from latest
    left join country_aliases
        on lower(trim(latest.country)) = country_aliases.alias
    left join countries
        on country_aliases.country_code = countries.country_code

),

final as (

    select
        lower(trim(source_system)) || ':' || trim(contact_id) as contact_id,
        trim(contact_id) as source_contact_id,
        lower(trim(source_system)) as source_system,
        {{ segmint.normalize_email('email') }} as email,
        {{ segmint.hash_pii(segmint.normalize_email('email')) }} as email_hash,
        {{ segmint.normalize_phone('phone', 'cast(dialing_code as varchar)') }} as phone,
        {{ segmint.hash_pii(segmint.normalize_phone('phone', 'cast(dialing_code as varchar)')) }}
            as phone_hash,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(trim(street), '') as street,
        nullif(trim(city), '') as city,
        nullif(trim(postcode), '') as postcode,
        resolved_country_code as country_code,
        {{ dbt.safe_cast('date_of_birth', api.Column.translate_type('date')) }} as date_of_birth,
        {{ segmint.to_utc_timestamp('created_at') }} as created_at,
        {{ segmint.to_utc_timestamp('updated_at') }} as updated_at,
        _loaded_at as loaded_at
    from with_country

)

select * from final
