{% macro connected_components(edges, node_a='node_a', node_b='node_b', iterations=20) -%}
    {#- Connected components of an undirected graph, in plain SQL for every adapter.

        Returns a select of (node_id, component_id): component_id is the smallest node id of
        the component. Parent pointers start at the node itself; each round hooks the root
        of every node's tree onto the smallest parent among its neighbours, then jumps each
        pointer to its grandparent (Shiloach-Vishkin style). The number of rounds needed
        grows with the log of the longest chain (17 for a chain of 100,000 nodes), so a fixed
        number of rounds suffices; the `identity_graph_converged` test proves it on every
        build. Each round is a CTE referencing the previous one: warehouses evaluate such
        CTEs once. -#}
    undirected as (
        select {{ node_a }} as node_id, {{ node_b }} as neighbor_id from {{ edges }}
        union all
        select {{ node_b }} as node_id, {{ node_a }} as neighbor_id from {{ edges }}
    ),

    cc_parent_0 as (
        select distinct node_id, node_id as parent_id from undirected
    ),
    {%- for i in range(iterations) %}

    cc_hooked_{{ i }} as (
        select
            p.node_id,
            least(
                p.parent_id,
                coalesce(root_hook.candidate_id, p.parent_id),
                coalesce(self_hook.candidate_id, p.parent_id)
            ) as parent_id
        from cc_parent_{{ i }} as p
        left join (
            select pu.parent_id as node_id, min(pv.parent_id) as candidate_id
            from undirected as e
            inner join cc_parent_{{ i }} as pu on e.node_id = pu.node_id
            inner join cc_parent_{{ i }} as pv on e.neighbor_id = pv.node_id
            group by pu.parent_id
        ) as root_hook on p.node_id = root_hook.node_id
        left join (
            select e.node_id, min(pv.parent_id) as candidate_id
            from undirected as e
            inner join cc_parent_{{ i }} as pv on e.neighbor_id = pv.node_id
            group by e.node_id
        ) as self_hook on p.node_id = self_hook.node_id
    ),

    cc_parent_{{ i + 1 }} as (
        select h.node_id, least(h.parent_id, grand.parent_id) as parent_id
        from cc_hooked_{{ i }} as h
        inner join cc_hooked_{{ i }} as grand on h.parent_id = grand.node_id
    ),
    {%- endfor %}

    components as (
        select node_id, parent_id as component_id from cc_parent_{{ iterations }}
    )
{%- endmacro %}
