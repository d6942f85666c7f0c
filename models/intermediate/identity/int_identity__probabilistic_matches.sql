-- Scored candidate pairs (none of them already joined by the deterministic graph) whose
-- match probability reaches var identity_match_threshold: each becomes an edge of the graph.
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

prior_weight as (

    select
        ln(max(prior_match_probability) / (1 - max(prior_match_probability))) / ln(2)
            as prior_match_weight
    from parameters

),

levels as (

    {%- for c in comparisons %}
        select
            record_id_l,
            record_id_r,
            '{{ c }}' as comparison_name,
            gamma_{{ c }} as comparison_level
        from comparisons
        where not is_deterministic_pair
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

-- Missing values (level -1) have no parameter row: they add no weight.
evidence as (

    select
        levels.record_id_l,
        levels.record_id_r,
        coalesce(sum(parameters.match_weight), 0) as evidence_weight
    from levels
    left join parameters
        on
            levels.comparison_name = parameters.comparison_name
            and levels.comparison_level = parameters.comparison_level
    group by levels.record_id_l, levels.record_id_r

),

scored as (

    select
        comparisons.*,
        prior_weight.prior_match_weight + evidence.evidence_weight as match_weight
    from comparisons
    inner join evidence
        on
            comparisons.record_id_l = evidence.record_id_l
            and comparisons.record_id_r = evidence.record_id_r
    cross join prior_weight

),

final as (

    select
        *,
        1 / (1 + power(2, -match_weight)) as match_probability
    from scored
    where 1 / (1 + power(2, -match_weight)) >= {{ var('identity_match_threshold') }}

)

select * from final
