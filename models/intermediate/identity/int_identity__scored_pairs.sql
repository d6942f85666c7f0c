-- Every candidate pair the deterministic graph has not already joined, scored: its match
-- weight (prior log-odds plus the evidence of each comparison, in bits) and match probability.
-- int_identity__match_threshold chooses the cut-off; int_identity__probabilistic_matches keeps
-- the pairs at or above it.
{%- set comparisons = segmint.identity_comparisons().keys() | list %}

with

comparisons as (

    select * from {{ ref('int_identity__pair_comparisons') }}

),

parameters as (

    select * from {{ ref('int_identity__fs_parameters') }}

),

candidates as (

    select * from {{ ref('int_identity__match_candidates') }}

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

-- Term-frequency adjustment, as splink does: an exact agreement on a value is worth more
-- when the value is rare ("zaychenko") and less when it is common ("smith"). The weight of
-- the exact level assumes a value of average frequency (its u probability); the adjustment
-- log2(u / frequency of this value) corrects it for the value the pair agrees on.
{%- set term_frequency_fields = {
    'first_name': ('first_name_key', 3), 'last_name': ('last_name_key', 3),
    'city': ('city_key', 2)
} %}

term_frequencies as (

    {%- for comparison, (column, level) in term_frequency_fields.items() %}
        select
            '{{ comparison }}' as comparison_name,
            {{ column }} as term,
            count(*) * 1.0 / sum(count(*)) over () as term_frequency
        from candidates
        where {{ column }} is not null
        group by {{ column }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

exact_terms as (

    {%- for comparison, (column, level) in term_frequency_fields.items() %}
        select
            comparisons.record_id_l,
            comparisons.record_id_r,
            '{{ comparison }}' as comparison_name,
            {{ level }} as comparison_level,
            l.{{ column }} as term
        from comparisons
        inner join candidates as l on comparisons.record_id_l = l.record_id
        where not comparisons.is_deterministic_pair and comparisons.gamma_{{ comparison }} = {{ level }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

term_adjustments as (

    select
        exact_terms.record_id_l,
        exact_terms.record_id_r,
        sum(ln(parameters.u_probability / term_frequencies.term_frequency) / ln(2))
            as term_frequency_weight
    from exact_terms
    inner join term_frequencies
        on
            exact_terms.comparison_name = term_frequencies.comparison_name
            and exact_terms.term = term_frequencies.term
    inner join parameters
        on
            exact_terms.comparison_name = parameters.comparison_name
            and exact_terms.comparison_level = parameters.comparison_level
    group by exact_terms.record_id_l, exact_terms.record_id_r

),

-- Evidence of each pair in bits: the sum of its comparison weights and term adjustments.
pair_evidence as (

    select
        comparisons.*,
        evidence.evidence_weight + coalesce(term_adjustments.term_frequency_weight, 0)
            as evidence_bits
    from comparisons
    inner join evidence
        on
            comparisons.record_id_l = evidence.record_id_l
            and comparisons.record_id_r = evidence.record_id_r
    left join term_adjustments
        on
            comparisons.record_id_l = term_adjustments.record_id_l
            and comparisons.record_id_r = term_adjustments.record_id_r

),

-- The prior: the probability that an open pair matches. EM's estimate (fs_parameters) is
-- refined to the fixed point where it equals the matches the scores themselves expect among
-- all open pairs: prior = sum of match probabilities / open pairs, var
-- identity_prior_iterations rounds (each one pass over the scored pairs). EM's own share is
-- learnt on the training pairs, which hold few non-matches, and overstates it.
-- The prior's iterations read the distinct evidence values (to a thousandth of a bit) and
-- how many pairs have each, not every pair again.
evidence_counts as (

    select
        round(pair_evidence.evidence_bits, 3) as evidence_bits,
        count(*) as pair_count
    from pair_evidence
    group by round(pair_evidence.evidence_bits, 3)

),

prior_0 as (

    select
        max(prior_match_probability) as prior_probability,
        max(open_pairs) as open_pairs
    from parameters

),
{%- for i in range(var('identity_prior_iterations')) %}

    expected_{{ i + 1 }} as (

        select
            sum(
                evidence_counts.pair_count / (
                    1 + power(
                        2,
                        -(
                            ln(prior_{{ i }}.prior_probability / (1 - prior_{{ i }}.prior_probability))
                            / ln(2)
                            + evidence_counts.evidence_bits
                        )
                    )
                )
            ) as expected_matches
        from evidence_counts
        cross join prior_{{ i }}

    ),

    prior_{{ i + 1 }} as (

        select
            case
                when prior_{{ i }}.open_pairs > 0 and expected_{{ i + 1 }}.expected_matches is not null
                    then least(
                        greatest(expected_{{ i + 1 }}.expected_matches / prior_{{ i }}.open_pairs, 1e-12),
                        0.5
                    )
                else prior_{{ i }}.prior_probability
            end as prior_probability,
            prior_{{ i }}.open_pairs
        from prior_{{ i }}
        cross join expected_{{ i + 1 }}

    ),
{%- endfor %}

prior_weight as (

    select
        prior_probability as prior_match_probability,
        ln(prior_probability / (1 - prior_probability)) / ln(2) as prior_match_weight
    from prior_{{ var('identity_prior_iterations') }}

),

scored as (

    select
        pair_evidence.* exclude (evidence_bits),  -- noqa: RF02
        prior_weight.prior_match_weight + pair_evidence.evidence_bits as match_weight,
        prior_weight.prior_match_probability
    from pair_evidence
    cross join prior_weight

),

final as (

    select
        *,
        1 / (1 + power(2, -match_weight)) as match_probability
    from scored

)

select * from final
