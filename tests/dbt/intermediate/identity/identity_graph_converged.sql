-- The connected-components rounds (var identity_graph_iterations) were enough: no edge of
-- the identity graph joins two different components. Rows returned are unfinished edges.
with

edges as (

    select * from {{ ref('int_identity__edges') }}

),

components as (

    select * from {{ ref('int_identity__components') }}

)

select edges.node_a, edges.node_b
from edges
inner join components as component_a on edges.node_a = component_a.node_id
inner join components as component_b on edges.node_b = component_b.node_id
where component_a.component_id <> component_b.component_id
