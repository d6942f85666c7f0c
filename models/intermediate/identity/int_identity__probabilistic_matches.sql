-- Scored pairs at or above the match threshold (int_identity__match_threshold): each becomes
-- an edge of the identity graph.

with

scored as (

    select * from {{ ref('int_identity__scored_pairs') }}

),

threshold as (

    select * from {{ ref('int_identity__match_threshold') }}

),

final as (

    select scored.*
    from scored
    inner join threshold on scored.match_probability >= threshold.match_threshold

)

select * from final
