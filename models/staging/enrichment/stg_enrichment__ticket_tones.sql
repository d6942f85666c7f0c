with

source as (

    select * from {{ source('enrichment', 'ticket_tones') }}

),

final as (

    select
        ticket_id,
        compound_score,
        tone,
        model as tone_model,
        scored_at
    from source

)

select * from final
