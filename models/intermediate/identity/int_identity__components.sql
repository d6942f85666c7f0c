-- Connected components of the whole identity graph: one component per person.
with

edges as (

    select * from {{ ref('int_identity__edges') }}

),

{{ segmint.connected_components('edges', 'node_a', 'node_b', var('identity_graph_iterations')) }},

final as (

    select * from components

)

select * from final
