-- Records grouped by exact shared identifiers only (before probabilistic matches). Only
-- record-to-identifier edges go through the connected-components rounds; a record with no
-- such edge (only its self edge) is a component of its own, named after its node.
with

edges as (

    select * from {{ ref('int_identity__deterministic_edges') }}

),

identifier_edges as (

    select
        node_a,
        node_b
    from edges
    where node_a <> node_b

),

{{ segmint.connected_components('identifier_edges', 'node_a', 'node_b', var('identity_graph_iterations')) }},

records as (

    -- node_a is always the record side of an edge.
    select distinct node_a as node_id
    from edges

),

final as (

    select
        substr(records.node_id, 5) as record_id,
        coalesce(components.component_id, records.node_id) as component_id
    from records
    left join components on records.node_id = components.node_id

)

select * from final
