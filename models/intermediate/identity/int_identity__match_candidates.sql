-- Contact records prepared for probabilistic matching: comparison keys only.
with

records as (

    select * from {{ ref('int_identity__records') }}
    where source_table = 'crm_contacts'

),

nicknames as (

    select * from {{ ref('nicknames') }}

),

usable as (

    select * from {{ ref('int_identity__record_usable_keys') }}

),

keyed as (

    select
        records.record_id,
        lower(records.first_name) as first_name_key,
        substr(lower(records.first_name), 1, 1) as first_initial,
        lower(records.last_name) as last_name_key,
        records.date_of_birth,
        lower(records.city) as city_key,
        lower(records.postcode) as postcode_key,
        -- Shared mailboxes and placeholder phones say nothing about the person.
        case when usable.email_hash is not null then split_part(records.email, '@', 1)
        end as email_local,
        usable.phone_hash
    from records
    left join usable on records.record_id = usable.record_id

),

final as (

    select
        keyed.*,
        coalesce(nicknames.name, keyed.first_name_key) as first_name_canonical
    from keyed
    left join nicknames
        on keyed.first_name_key = nicknames.nickname

)

select * from final
