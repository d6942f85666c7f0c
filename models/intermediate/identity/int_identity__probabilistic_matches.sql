-- Scored candidate pairs whose match probability reaches var identity_match_threshold and
-- that the deterministic graph has not already joined: each becomes an edge of the graph.
{%- set comparisons = [
    'first_name', 'last_name', 'date_of_birth', 'city', 'postcode', 'email', 'phone'
] %}

with

comparisons as (

    select * from {{ ref('int_identity__pair_comparisons') }}

),

parameters as (

    select * from {{ ref('int_identity__fs_parameters') }}

),

deterministic as (

    select * from {{ ref('int_identity__deterministic_components') }}

),

prior_weight as (

    select
        ln(max(prior_match_probability) / (1 - max(prior_match_probability))) / ln(2)
            as prior_match_weight
    from parameters

),

scored as (

    select
        comparisons.record_id_l,
        comparisons.record_id_r,
        {%- for c in comparisons %}
            comparisons.gamma_{{ c }},
        {%- endfor %}
        prior_weight.prior_match_weight
        {%- for c in comparisons %}
            + coalesce(w_{{ c }}.match_weight, 0)
        {%- endfor %} as match_weight
    from comparisons
    cross join prior_weight
    {%- for c in comparisons %}
        left join parameters as w_{{ c }}
            on
                w_{{ c }}.comparison_name = '{{ c }}'
                and comparisons.gamma_{{ c }} = w_{{ c }}.comparison_level
    {%- endfor %}

),

final as (

    select
        scored.*,
        1 / (1 + power(2, -scored.match_weight)) as match_probability
    from scored
    inner join deterministic as component_l
        on scored.record_id_l = component_l.record_id
    inner join deterministic as component_r
        on scored.record_id_r = component_r.record_id
    where
        component_l.component_id <> component_r.component_id
        and 1 / (1 + power(2, -scored.match_weight)) >= {{ var('identity_match_threshold') }}

)

select * from final
