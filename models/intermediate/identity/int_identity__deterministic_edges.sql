-- Record-to-identifier edges of the identity graph, without the excluded identifiers (their
-- links are listed in int_identity__excluded_links) and without identifiers carried by a
-- single record (they join nothing, and leaving them out shrinks the graph). Every record
-- also has an edge to itself, so that a record without usable identifiers is still a node.
with

records as (

    select * from {{ ref('int_identity__matching_records') }}

),

identifiers as (

    select * from {{ ref('int_identity__usable_identifiers') }}

),

linking_identifiers as (

    select
        identifier_type,
        identifier_value
    from identifiers
    group by identifier_type, identifier_value
    having count(distinct record_id) > 1

),

identifier_edges as (

    select
        'rec:' || identifiers.record_id as node_a,
        identifiers.identifier_type || ':' || identifiers.identifier_value as node_b
    from identifiers
    inner join linking_identifiers
        on
            identifiers.identifier_type = linking_identifiers.identifier_type
            and identifiers.identifier_value = linking_identifiers.identifier_value

),

self_edges as (

    select
        'rec:' || record_id as node_a,
        'rec:' || record_id as node_b
    from records

),

final as (

    select * from identifier_edges
    union all
    select * from self_edges

)

select * from final
