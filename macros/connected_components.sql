{% macro connected_components(edges, node_a='node_a', node_b='node_b', iterations=20, settle_after=3) -%}
    {#- Connected components of an undirected graph, in plain SQL for every adapter.

        Returns a select of (node_id, component_id): component_id is the smallest node id of
        the component. Node ids are first numbered in their sort order, so the rounds join
        integers, not strings. Parent pointers start at the node itself; each round hooks the
        root of every node's tree onto the smallest parent among its tree's neighbours, then
        jumps each pointer to its grandparent (Shiloach-Vishkin style). The number of rounds
        needed grows with the log of the longest chain (17 for a chain of 100,000 nodes), so
        a fixed number of rounds suffices; the `identity_graph_converged` test proves it on
        every build. Each round is a CTE referencing the previous one: warehouses evaluate
        such CTEs once. After `settle_after` rounds, the rounds left run only on the
        components not settled yet (some edge still has different parents at its ends): on
        identity graphs nearly every component settles within 3 rounds, so the later rounds
        cost little. -#}
    cc_nodes as (
        select
            node,
            row_number() over (order by node) as node_key
        from (
            select {{ node_a }} as node from {{ edges }}
            union
            select {{ node_b }} as node from {{ edges }}
        ) as all_nodes
    ),

    cc_keyed_edges as (
        select
            key_a.node_key as node_key_a,
            key_b.node_key as node_key_b
        from {{ edges }} as keyed
        inner join cc_nodes as key_a on keyed.{{ node_a }} = key_a.node
        inner join cc_nodes as key_b on keyed.{{ node_b }} = key_b.node
    ),

    undirected as (
        select node_key_a as node_id, node_key_b as neighbor_id from cc_keyed_edges
        union all
        select node_key_b as node_id, node_key_a as neighbor_id from cc_keyed_edges
    ),

    cc_parent_0 as (
        select node_key as node_id, node_key as parent_id from cc_nodes
    ),
    {%- for i in range(iterations) %}
    {%- set round_edges = 'undirected' if i < settle_after else 'cc_unsettled_edges' %}
    {%- if i == settle_after and settle_after < iterations %}

    cc_unsettled_labels as (
        -- After the first rounds most components are settled: every edge has the same
        -- parent at both ends. Later rounds run only on the components that are not (their
        -- nodes are exactly those whose parent is an end of an unsettled edge). Settled
        -- components would not change in later rounds, so the result is the same.
        select distinct end_a.parent_id
        from undirected as e
        inner join cc_parent_{{ i }} as end_a on e.node_id = end_a.node_id
        inner join cc_parent_{{ i }} as end_b on e.neighbor_id = end_b.node_id
        where end_a.parent_id <> end_b.parent_id
    ),

    cc_settled as (
        select p.node_id, p.parent_id
        from cc_parent_{{ i }} as p
        where p.parent_id not in (select l.parent_id from cc_unsettled_labels as l)
    ),

    cc_unsettled_parent_{{ i }} as (
        select p.node_id, p.parent_id
        from cc_parent_{{ i }} as p
        inner join cc_unsettled_labels as l on p.parent_id = l.parent_id
    ),

    cc_unsettled_edges as (
        select e.node_id, e.neighbor_id
        from undirected as e
        inner join cc_unsettled_parent_{{ i }} as p on e.node_id = p.node_id
    ),
    {%- endif %}
    {%- set parent_in = 'cc_unsettled_parent_' ~ i if i >= settle_after else 'cc_parent_' ~ i %}
    {%- set parent_out = 'cc_unsettled_parent_' ~ (i + 1) if i >= settle_after else 'cc_parent_' ~ (i + 1) %}

    cc_neighbor_min_{{ i }} as (
        -- The smallest parent among each node's neighbours.
        select e.node_id, min(pv.parent_id) as candidate_id
        from {{ round_edges }} as e
        inner join {{ parent_in }} as pv on e.neighbor_id = pv.node_id
        group by e.node_id
    ),

    cc_root_min_{{ i }} as (
        -- The smallest of those over each tree, for its root.
        select p.parent_id as node_id, min(n.candidate_id) as candidate_id
        from {{ parent_in }} as p
        inner join cc_neighbor_min_{{ i }} as n on p.node_id = n.node_id
        group by p.parent_id
    ),

    cc_hooked_{{ i }} as (
        select
            p.node_id,
            least(
                p.parent_id,
                coalesce(root_hook.candidate_id, p.parent_id),
                coalesce(self_hook.candidate_id, p.parent_id)
            ) as parent_id
        from {{ parent_in }} as p
        left join cc_root_min_{{ i }} as root_hook on p.node_id = root_hook.node_id
        left join cc_neighbor_min_{{ i }} as self_hook on p.node_id = self_hook.node_id
    ),

    {{ parent_out }} as (
        select h.node_id, least(h.parent_id, grand.parent_id) as parent_id
        from cc_hooked_{{ i }} as h
        inner join cc_hooked_{{ i }} as grand on h.parent_id = grand.node_id
    ),
    {%- endfor %}

    {%- if settle_after < iterations %}

    cc_parent_final as (
        select node_id, parent_id from cc_settled
        union all
        select node_id, parent_id from cc_unsettled_parent_{{ iterations }}
    ),
    {%- else %}

    cc_parent_final as (
        select node_id, parent_id from cc_parent_{{ iterations }}
    ),
    {%- endif %}

    components as (
        select
            member.node as node_id,
            root.node as component_id
        from cc_parent_final as p
        inner join cc_nodes as member on p.node_id = member.node_key
        inner join cc_nodes as root on p.parent_id = root.node_key
    )
{%- endmacro %}
