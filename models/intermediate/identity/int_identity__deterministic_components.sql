-- Records grouped by exact shared identifiers only (before probabilistic matches).
with

edges as (

    select * from {{ ref('int_identity__deterministic_edges') }}

),

{{ segmint.connected_components('edges', 'node_a', 'node_b', var('identity_graph_iterations')) }},

final as (

    select
        substr(node_id, 5) as record_id,
        component_id
    from components
    where node_id like 'rec:%'

)

select * from final
