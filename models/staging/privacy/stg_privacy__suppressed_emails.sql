-- Every email hash an erasure request has suppressed (privacy.suppression_list). The
-- request rows themselves are deleted once carried out; only these hashes remain.
with

source as (

    select * from {{ source('segmint_privacy', 'suppression_list') }}

),

final as (

    select
        identifier_hash as email_hash,
        request_id as erasure_request_id,
        suppressed_at
    from source
    where identifier_type = 'email'

)

select * from final
