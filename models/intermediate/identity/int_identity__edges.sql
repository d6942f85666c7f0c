-- The whole identity graph: deterministic edges plus accepted probabilistic matches.
with

deterministic as (

    select * from {{ ref('int_identity__deterministic_edges') }}

),

matches as (

    select * from {{ ref('int_identity__probabilistic_matches') }}

),

final as (

    select
        node_a,
        node_b,
        'deterministic' as edge_type,
        cast(null as double) as match_probability
    from deterministic
    union all
    select
        'rec:' || record_id_l as node_a,
        'rec:' || record_id_r as node_b,
        'probabilistic' as edge_type,
        match_probability
    from matches

)

select * from final
