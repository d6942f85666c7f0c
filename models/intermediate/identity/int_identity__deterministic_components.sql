{{
    config(
        materialized='incremental',
        unique_key='record_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

-- Records grouped by exact shared identifiers only (before probabilistic matches). Only
-- record-to-identifier edges go through the connected-components rounds; a record with no
-- such edge (only its self edge) is a component of its own, named after its node.
-- Incremental: a record whose edges changed (new record, new or dropped identifier, an
-- identifier that became linking or excluded) is found by its edge signature. Only the
-- components it was in, and those of the records it now shares an identifier with, are
-- recomputed, over their records' current edges; every other stored row stays as it is.
-- Components are named after their smallest node, so a full refresh gives the same names.
with

edges as (

    select * from {{ ref('int_identity__deterministic_edges') }}

),

record_signatures as (

    -- node_a is always the record side of an edge.
    select
        node_a as node_id,
        {{ segmint.set_hash('node_b') }} as edge_signature
    from edges
    group by node_a

),

{% if is_incremental() %}

    stored as (

        select
            'rec:' || record_id as node_id,
            component_id,
            edge_signature
        from {{ this }}

    ),

    changed_records as (

        select record_signatures.node_id
        from record_signatures
        left join stored on record_signatures.node_id = stored.node_id
        where stored.node_id is null or stored.edge_signature <> record_signatures.edge_signature

    ),

    affected_components as (

        -- The components the changed records were in ...
        select stored.component_id
        from stored
        inner join changed_records on stored.node_id = changed_records.node_id
        union
        -- ... and those of the records they now share an identifier with.
        select stored.component_id
        from changed_records
        inner join edges as changed_edges on changed_records.node_id = changed_edges.node_a
        inner join edges as shared_edges on changed_edges.node_b = shared_edges.node_b
        inner join stored on shared_edges.node_a = stored.node_id
        where changed_edges.node_a <> changed_edges.node_b

    ),

    affected_records as (

        select node_id from changed_records
        union
        select stored.node_id
        from stored
        inner join affected_components on stored.component_id = affected_components.component_id

    ),

    scoped_edges as (

        select
            edges.node_a,
            edges.node_b
        from edges
        inner join affected_records on edges.node_a = affected_records.node_id

    ),

{% else %}

    -- Read again rather than from the edges CTE: a CTE read twice is materialized first.
    scoped_edges as (

        select
            node_a,
            node_b
        from {{ ref('int_identity__deterministic_edges') }}

    ),

{% endif %}

identifier_edges as (

    select
        node_a,
        node_b
    from scoped_edges
    where node_a <> node_b

),

{{ segmint.connected_components('identifier_edges', 'node_a', 'node_b', var('identity_graph_iterations')) }},

records as (

    select distinct node_a as node_id
    from scoped_edges

),

final as (

    select
        substr(records.node_id, 5) as record_id,
        coalesce(components.component_id, records.node_id) as component_id,
        record_signatures.edge_signature,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as refreshed_at
    from records
    inner join record_signatures on records.node_id = record_signatures.node_id
    left join components on records.node_id = components.node_id

)

select * from final
