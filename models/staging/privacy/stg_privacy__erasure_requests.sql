with

source as (

    select * from {{ source('privacy', 'erasure_requests') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by trim(request_id)
        order by _loaded_at desc, _source_row desc
    ) = 1

),

final as (

    select
        trim(request_id) as erasure_request_id,
        {{ segmint.normalize_email('email') }} as email,
        {{ segmint.hash_pii(segmint.normalize_email('email')) }} as email_hash,
        {{ segmint.to_utc_timestamp('requested_at') }} as requested_at,
        _loaded_at as loaded_at
    from latest

)

select * from final
