with

source as (

    select * from {{ source('privacy', 'consent_events') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by trim(consent_event_id)
        order by _loaded_at desc, _source_row desc
    ) = 1

),

final as (

    select
        trim(consent_event_id) as consent_event_id,
        {{ segmint.normalize_email('email') }} as email,
        {{ segmint.hash_pii(segmint.normalize_email('email')) }} as email_hash,
        lower(trim(purpose)) as consent_purpose,
        lower(trim(status)) as consent_status,
        lower(trim(status)) = 'granted' as is_granted,
        {{ segmint.to_utc_timestamp('recorded_at') }} as recorded_at,
        lower(nullif(trim(source), '')) as consent_source,
        _loaded_at as loaded_at
    from latest

)

select * from final
