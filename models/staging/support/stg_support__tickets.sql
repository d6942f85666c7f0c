with

source as (

    select * from {{ source('support', 'support_tickets') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by trim(ticket_id)
        order by _loaded_at desc, _source_row desc
    ) = 1

),

final as (

    select
        trim(ticket_id) as ticket_id,
        {{ segmint.normalize_email('email') }} as email,
        {{ segmint.hash_pii(segmint.normalize_email('email')) }} as email_hash,
        {{ segmint.to_utc_timestamp('created_at') }} as created_at,
        lower(nullif(trim(channel), '')) as ticket_channel,
        subject,
        body,
        lower(nullif(trim(status), '')) as ticket_status,
        satisfaction_score,
        _loaded_at as loaded_at
    from latest

)

select * from final
