-- Fellegi-Sunter parameters: m probabilities estimated by expectation-maximisation over the
-- comparison patterns of the candidate pairs, u probabilities from random pairs (held fixed),
-- and two priors. EM runs a fixed number of rounds (var identity_em_iterations), unrolled in
-- SQL, on one row per distinct pattern; its share of matches among candidates is kept for
-- information. Scoring starts from the probability that two contact records the
-- deterministic graph has not joined match (open_pair_prior below): candidates are chosen by
-- blocking, so their own match share would overstate every pair's odds.
{%- set comparisons = segmint.identity_comparisons().keys() | list %}
{%- set rounds = var('identity_em_iterations') %}
{#- Per comparison, the training pairs its m is estimated on: those picked by a training
    rule that leaves it free (identity_training_rules), and the pairs the deterministic
    graph joins, unless that graph fixes the comparison (identity_deterministic_fixes).
    Were the pairs picked by a rule on the comparison itself counted, every match among
    them would agree there: with names the only rule that finds pairs (no birth date, no postcode), EM
    gave name typos an m of zero and recall fell to 0.59 on FEBRL 3 without those columns. #}
{%- set rules = segmint.identity_training_rules() %}
{%- set trains = {} %}
{%- for c in comparisons %}
    {%- set tests = [] %}
    {%- for rule in rules %}
        {%- if c not in rule['fixes'] %}
            {%- do tests.append('mod(floor(training_rule_mask / ' ~ 2 ** loop.index0 ~ '), 2) = 1') %}
        {%- endif %}
    {%- endfor %}
    {%- if c not in segmint.identity_deterministic_fixes() %}
        {%- do tests.append('is_deterministic_pair') %}
    {%- endif %}
    {%- do trains.update({c: '(' ~ (tests | join(' or ') or 'false') ~ ')'}) %}
{%- endfor %}

with

comparisons as (

    select * from {{ ref('int_identity__pair_comparisons') }}

),

u as (

    select * from {{ ref('int_identity__fs_u_probabilities') }}

),

candidates as (

    select * from {{ ref('int_identity__match_candidates') }}

),

deterministic as (

    select * from {{ ref('int_identity__deterministic_components') }}

),

component_sizes as (

    select
        deterministic.component_id,
        count(*) as record_count
    from candidates
    inner join deterministic on candidates.record_id = deterministic.record_id
    group by deterministic.component_id

),

deterministic_pairs as (

    select
        sum(record_count * (record_count - 1) / 2.0) as joined_pairs,
        sum(record_count) * (sum(record_count) - 1) / 2.0 as all_pairs
    from component_sizes

),

grouped as (

    select
        {%- for c in comparisons %}
            gamma_{{ c }},
        {%- endfor %}
        {%- for c in comparisons %}
            {{ trains[c] }} as trains_{{ c }},
        {%- endfor %}
        count(*) as pair_count,
        count(case when not is_deterministic_pair then 1 end) as open_pair_count
    from comparisons
    where is_training_pair or is_deterministic_pair
    group by
        {%- for c in comparisons %}
            gamma_{{ c }},
        {%- endfor %}
        {%- for c in comparisons %}
            {{ trains[c] }}{% if not loop.last %},{% endif %}
        {%- endfor %}

),

patterns as (

    select
        *,
        row_number() over (
            order by
                {%- for c in comparisons %}
                    gamma_{{ c }},
                {%- endfor %}
                {%- for c in comparisons %}
                    trains_{{ c }}{% if not loop.last %},{% endif %}
                {%- endfor %}
        ) as pattern_id
    from grouped

),

pattern_levels as (

    {%- for c in comparisons %}
        select
            pattern_id,
            pair_count,
            open_pair_count,
            '{{ c }}' as comparison_name,
            gamma_{{ c }} as comparison_level,
            trains_{{ c }} as trains
        from patterns
        where gamma_{{ c }} >= 0
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

top_levels as (

    select
        comparison_name,
        max(comparison_level) as top_level
    from u
    group by comparison_name

),

m_0 as (

    select
        u.comparison_name,
        u.comparison_level,
        case
            when u.comparison_level = top_levels.top_level then 0.9
            else 0.1 / top_levels.top_level
        end as m_probability
    from u
    inner join top_levels on u.comparison_name = top_levels.comparison_name

),

prior_0 as (

    select cast({{ var('identity_em_initial_prior') }} as double) as prior_probability

),
{%- for i in range(rounds) %}

    posterior_{{ i }} as (

        select
            pattern_levels.pattern_id,
            max(pattern_levels.pair_count) as pair_count,
            max(pattern_levels.open_pair_count) as open_pair_count,
            max(prior_{{ i }}.prior_probability) * exp(sum(ln(m_{{ i }}.m_probability))) / (
                max(prior_{{ i }}.prior_probability) * exp(sum(ln(m_{{ i }}.m_probability)))
                + (1 - max(prior_{{ i }}.prior_probability)) * exp(sum(ln(u.u_probability)))
            ) as match_probability
        from pattern_levels
        inner join m_{{ i }}
            on
                pattern_levels.comparison_name = m_{{ i }}.comparison_name
                and pattern_levels.comparison_level = m_{{ i }}.comparison_level
        inner join u
            on
                pattern_levels.comparison_name = u.comparison_name
                and pattern_levels.comparison_level = u.comparison_level
        cross join prior_{{ i }}
        group by pattern_levels.pattern_id

    ),

    expected_{{ i }} as (

        select
            pattern_levels.comparison_name,
            pattern_levels.comparison_level,
            sum(
                case
                    when pattern_levels.trains
                        then posterior_{{ i }}.pair_count * posterior_{{ i }}.match_probability
                end
            ) as matched_pairs
        from pattern_levels
        inner join posterior_{{ i }} on pattern_levels.pattern_id = posterior_{{ i }}.pattern_id
        group by pattern_levels.comparison_name, pattern_levels.comparison_level

    ),

    m_{{ i + 1 }} as (

        select
            u.comparison_name,
            u.comparison_level,
            -- A comparison never observed among its training pairs keeps its previous m
            -- (at worst the start, m_0).
            greatest(
                coalesce(
                    coalesce(expected_{{ i }}.matched_pairs, 0)
                    / nullif(
                        sum(coalesce(expected_{{ i }}.matched_pairs, 0))
                            over (partition by u.comparison_name),
                        0
                    ),
                    m_{{ i }}.m_probability
                ),
                1e-6
            ) as m_probability
        from u
        inner join m_{{ i }}
            on
                u.comparison_name = m_{{ i }}.comparison_name
                and u.comparison_level = m_{{ i }}.comparison_level
        left join expected_{{ i }}
            on
                u.comparison_name = expected_{{ i }}.comparison_name
                and u.comparison_level = expected_{{ i }}.comparison_level

    ),

    prior_{{ i + 1 }} as (

        select
            least(
                greatest(sum(pair_count * match_probability) / sum(pair_count), 1e-6),
                1 - 1e-6
            ) as prior_probability
        from posterior_{{ i }}

    ),
{%- endfor %}

-- The starting estimate of the prior used in scoring: the probability that two contact
-- records the deterministic graph has NOT joined (an open pair) match, as EM sees it: its
-- expected matches among the open training pairs over all open pairs. Scoring only ever
-- sees open pairs, so this, not the match rate of all pairs, is the right prior: where
-- emails and phones join most duplicates, the matches left among open pairs are few
-- (measured on the generator at 100k customers: 8.5k true open matches against 103k joined
-- pairs; with the all-pairs prior, name-only pairs scored p = 0.6 and were 22% matches).
-- EM's estimate is only a start: int_identity__scored_pairs refines it over every scored
-- pair. Counting no match outside the candidates understates it only slightly.
open_pair_prior as (

    select
        least(
            greatest(
                coalesce(
                    sum(
                        posterior_{{ rounds - 1 }}.open_pair_count
                        * posterior_{{ rounds - 1 }}.match_probability
                    ),
                    0
                )
                / nullif(
                    max(deterministic_pairs.all_pairs) - max(deterministic_pairs.joined_pairs), 0
                ),
                1e-12
            ),
            0.5
        ) as prior_probability,
        max(deterministic_pairs.all_pairs) - max(deterministic_pairs.joined_pairs) as open_pairs
    from deterministic_pairs
    cross join posterior_{{ rounds - 1 }}

),

final as (

    select
        u.comparison_name,
        u.comparison_level,
        m_{{ rounds }}.m_probability,
        u.u_probability,
        ln(m_{{ rounds }}.m_probability / u.u_probability) / ln(2) as match_weight,
        open_pair_prior.prior_probability as prior_match_probability,
        open_pair_prior.open_pairs,
        prior_{{ rounds }}.prior_probability as candidate_match_share
    from u
    inner join m_{{ rounds }}
        on
            u.comparison_name = m_{{ rounds }}.comparison_name
            and u.comparison_level = m_{{ rounds }}.comparison_level
    cross join prior_{{ rounds }}
    cross join open_pair_prior

)

select * from final
