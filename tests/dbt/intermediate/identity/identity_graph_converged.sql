-- The connected-components rounds (var identity_graph_iterations) were enough: no edge of
-- the identity graph joins two different components. Rows returned are unfinished edges:
-- records sharing an identifier in different deterministic components, or records joined
-- by any edge in different components of the whole graph.
-- It reads three models; Dagster shows it as a check of the components it proves.
{{ config(meta={'dagster': {'ref': {'name': 'int_identity__components'}}}) }}

with

edges as (

    select * from {{ ref('int_identity__edges') }}

),

deterministic as (

    select
        'rec:' || record_id as node_id,
        component_id
    from {{ ref('int_identity__deterministic_components') }}

),

components as (

    select * from {{ ref('int_identity__components') }}

),

identifier_components as (

    select
        edges.node_b as identifier_node,
        min(deterministic.component_id) as first_component_id,
        max(deterministic.component_id) as last_component_id
    from edges
    inner join deterministic on edges.node_a = deterministic.node_id
    where edges.edge_type = 'deterministic' and edges.node_b not like 'rec:%'
    group by edges.node_b

),

record_edges as (

    select
        edges.node_a,
        edges.node_b
    from edges
    where edges.node_a like 'rec:%' and edges.node_b like 'rec:%'

)

select
    'deterministic' as graph,
    identifier_node as node_a,
    first_component_id as node_b
from identifier_components
where first_component_id <> last_component_id
union all
select
    'whole' as graph,
    record_edges.node_a,
    record_edges.node_b
from record_edges
inner join components as component_a on record_edges.node_a = component_a.node_id
inner join components as component_b on record_edges.node_b = component_b.node_id
where component_a.component_id <> component_b.component_id
