-- Connected components of the whole identity graph, one per person, for every record node.
-- Built on the deterministic components rather than on the whole graph again: each
-- deterministic component is one node here, and the accepted probabilistic matches are the
-- edges between them. A component is named after its smallest node id, so the name is the
-- smallest of its deterministic components' names: the same as a run over the whole graph.
with

deterministic as (

    select * from {{ ref('int_identity__deterministic_components') }}

),

matches as (

    select * from {{ ref('int_identity__probabilistic_matches') }}

),

component_edges as (

    select
        component_l.component_id as node_a,
        component_r.component_id as node_b
    from matches
    inner join deterministic as component_l on matches.record_id_l = component_l.record_id
    inner join deterministic as component_r on matches.record_id_r = component_r.record_id

),

{{ segmint.connected_components('component_edges', 'node_a', 'node_b', var('identity_graph_iterations')) }},

final as (

    select
        'rec:' || deterministic.record_id as node_id,
        coalesce(components.component_id, deterministic.component_id) as component_id
    from deterministic
    left join components on deterministic.component_id = components.node_id

)

select * from final
