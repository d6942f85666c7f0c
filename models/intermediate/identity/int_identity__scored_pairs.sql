-- Every candidate pair the deterministic graph has not already joined, scored: its match
-- weight (prior log-odds plus the evidence of each comparison, in bits) and match probability.
-- int_identity__match_threshold chooses the cut-off; int_identity__probabilistic_matches keeps
-- the pairs at or above it.
{%- set level_counts = segmint.identity_comparisons() %}
{#- Comparisons whose exact agreement term frequencies adjust: (column, top level). #}
{%- set exact_columns = segmint.identity_exact_columns() %}
{%- set term_frequency_fields = {} %}
{%- for comparison in ['first_name', 'last_name', 'city'] %}
    {%- do term_frequency_fields.update(
        {comparison: (exact_columns[comparison], level_counts[comparison] - 1)}
    ) %}
{%- endfor %}

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

-- The weight of every comparison level, in bits (0 for a level without parameters), and the
-- u probability of the exact levels that term frequencies adjust, as one row: each pair
-- reads its evidence from its own columns, without unpivoting the pairs.
weights as (

    select
        {%- for c, n in level_counts.items() %}
            {%- for level in range(n) %}
                coalesce(
                    max(
                        case
                            when comparison_name = '{{ c }}' and comparison_level = {{ level }}
                                then match_weight
                        end
                    ),
                    0
                ) as weight_{{ c }}_{{ level }},
            {%- endfor %}
        {%- endfor %}
        {%- for comparison, (column, level) in term_frequency_fields.items() %}
            max(
                case
                    when comparison_name = '{{ comparison }}' and comparison_level = {{ level }}
                        then u_probability
                end
            ) as u_{{ comparison }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from parameters

),

-- Term-frequency adjustment, as splink does: an exact agreement on a value is worth more
-- when the value is rare ("zaychenko") and less when it is common ("smith"). The weight of
-- the exact level assumes a value of average frequency (its u probability); the adjustment
-- log2(u / frequency of this value) corrects it for the value the pair agrees on.
{%- for comparison, (column, level) in term_frequency_fields.items() %}

    term_frequencies_{{ comparison }} as (

        select
            {{ column }} as term,
            count(*) * 1.0 / sum(count(*)) over () as term_frequency
        from candidates
        where {{ column }} is not null
        group by {{ column }}

    ),
{%- endfor %}

-- The frequency of each record's own values (the left record's, for a pair that agrees).
record_terms as (

    select
        candidates.record_id,
        {%- for comparison, (column, level) in term_frequency_fields.items() %}
            term_frequencies_{{ comparison }}.term_frequency
                as term_frequency_{{ comparison }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from
        candidates
    {%- for comparison, (column, level) in term_frequency_fields.items() %}
    left join term_frequencies_{{ comparison }}
        on candidates.{{ column }} = term_frequencies_{{ comparison }}.term
    {%- endfor %}

),

-- Evidence of each pair in bits: the weights of its comparison levels (a missing value,
-- level -1, adds nothing) and the term adjustments of its exact agreements.
pair_evidence as (

    select
        comparisons.*,
        0
        {%- for c, n in level_counts.items() %}
            + case comparisons.gamma_{{ c }}
                {%- for level in range(n) %}
                    when {{ level }} then weights.weight_{{ c }}_{{ level }}
                {%- endfor %}
                else 0
            end
        {%- endfor %}
        {%- for comparison, (column, level) in term_frequency_fields.items() %}
            + case
                when comparisons.gamma_{{ comparison }} = {{ level }}
                    then coalesce(
                        ln(
                            weights.u_{{ comparison }}
                            / record_terms.term_frequency_{{ comparison }}
                        ) / ln(2),
                        0
                    )
                else 0
            end
        {%- endfor %}
            as evidence_bits
    from comparisons
    inner join record_terms on comparisons.record_id_l = record_terms.record_id
    cross join weights
    where not comparisons.is_deterministic_pair

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
