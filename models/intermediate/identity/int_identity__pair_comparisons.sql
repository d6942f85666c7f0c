-- Candidate pairs of contact records from the blocking rules, with their comparison vector.
-- is_deterministic_pair marks pairs the deterministic graph already joins: they anchor the
-- match class for EM but need no scoring.
{#- Blocking rules: a pair is compared when it agrees on every key of one rule. The keys
    survive typing errors (phonetic names, birth dates ignoring a day/month swap, streets
    without the number), and each rule pairs two fields, so a pair with typos in several
    fields is still found through any two it gets right. A block (one value of a rule's
    keys) with more than var identity_max_block_size records is skipped: it would add
    pairs quadratically and say little; the other rules still reach its records. Each rule
    also keeps within a pair budget (var identity_max_pairs_per_record times the records),
    so that the candidate pairs grow with the records, not with their square. #}
{%- set rules = [
    ('name_tokens', ['name_token', 'birth_date_key']),
    ('name_tokens', ['name_token', 'city_soundex']),
    ('name_tokens', ['name_token', 'postcode_key']),
    ('keyed', ['name_set_key']),
    ('name_tokens', ['name_initial', 'birth_date_key']),
    ('keyed', ['birth_date_key', 'city_soundex']),
    ('keyed', ['birth_date_key', 'postcode_key']),
    ('keyed', ['street_name_key', 'postcode_key']),
    ('keyed', ['street_name_key', 'city_soundex']),
    ('keyed', ['email_local']),
] %}
{%- set max_block = var('identity_max_block_size') %}
{#- EM's training pairs: the rules of identity_training_rules, one bit each. #}
{%- set training_conditions = [] %}
{%- for rule in segmint.identity_training_rules() %}
    {%- set parts = [] %}
    {%- for key in rule['keys'] %}{% do parts.append('l.' ~ key ~ ' = r.' ~ key) %}{% endfor %}
    {%- do training_conditions.append('(' ~ parts | join(' and ') ~ ')') %}
{%- endfor %}

with

candidates as (

    select * from {{ ref('int_identity__match_candidates') }}

),

deterministic as (

    select * from {{ ref('int_identity__deterministic_components') }}

),

-- Records numbered in record id order, with their deterministic component: blocking and the
-- joins back to the records run on integers, not on record id strings (0.4 s less at 100k
-- customers). Key order is id order, so each pair still comes as (smaller id, larger id).
keyed as (

    select
        row_number() over (order by candidates.record_id) as record_key,
        candidates.*,
        deterministic.component_id
    from candidates
    inner join deterministic on candidates.record_id = deterministic.record_id

),

-- Each name, first or last, as a token: a pair whose first and last names were swapped,
-- or that has one name wrong, still shares a token with the other record.
name_tokens as (

    select
        record_key,
        first_name_soundex as name_token,
        substr(first_name_soundex, 1, 1) as name_initial,
        birth_date_key,
        city_soundex,
        postcode_key
    from keyed
    where first_name_soundex is not null
    union
    select
        record_key,
        last_name_soundex as name_token,
        substr(last_name_soundex, 1, 1) as name_initial,
        birth_date_key,
        city_soundex,
        postcode_key
    from keyed
    where last_name_soundex is not null

),

budget as (

    select count(*) * {{ var('identity_max_pairs_per_record') }} as pair_budget from keyed

),
{%- for relation, rule in rules %}

    blocks_{{ loop.index }} as (

        select
            {%- for key in rule %}
                {{ key }},
            {%- endfor %}
            count(*) as block_size,
            count(*) * (count(*) - 1) / 2 as block_pairs
        from {{ relation }}
        where
            {%- for key in rule %}
                {{ key }} is not null{% if not loop.last %} and{% endif %}
            {%- endfor %}
        group by
            {%- for key in rule %}
                {{ key }}{% if not loop.last %},{% endif %}
            {%- endfor %}
        having count(*) between 2 and {{ max_block }}

    ),

    -- The rule's pair budget: its blocks from the smallest up, as long as their pairs stay
    -- within var identity_max_pairs_per_record times the records. A rule that is selective
    -- here keeps every block; one that is not on this data (a name and a city, where the
    -- data has few cities) keeps only its small, telling blocks.
    kept_{{ loop.index }} as (

        select
            {%- for key in rule %}
                {{ key }}{% if not loop.last %},{% endif %}
            {%- endfor %}
        from (
            select
                blocks_{{ loop.index }}.*,
                sum(blocks_{{ loop.index }}.block_pairs) over (
                    order by blocks_{{ loop.index }}.block_size
                    range between unbounded preceding and current row
                ) as cumulative_pairs
            from blocks_{{ loop.index }}
        )
        where cumulative_pairs <= (select budget.pair_budget from budget)

    ),
{%- endfor %}

blocked as (

    {%- for relation, rule in rules %}
        select
            l.record_key as record_key_l,
            r.record_key as record_key_r
        from kept_{{ loop.index }} as b
        inner join {{ relation }} as l
            on
                {%- for key in rule %}
                    l.{{ key }} = b.{{ key }}{% if not loop.last %} and{% endif %}
                {%- endfor %}
        inner join {{ relation }} as r
            on
                l.record_key < r.record_key
                {%- for key in rule %}
                    and r.{{ key }} = b.{{ key }}
                {%- endfor %}
        {%- if not loop.last %}
            union
        {%- endif %}
    {%- endfor %}

),

final as (

    select
        l.record_id as record_id_l,
        r.record_id as record_id_r,
        l.component_id = r.component_id as is_deterministic_pair,
        -- EM learns from the pairs that agree exactly on two strong fields (training pairs):
        -- mostly matches and non-matches that disagree elsewhere. The broad phonetic blocks
        -- add many non-matches that agree on their blocking fields, which random pairs (the
        -- u side) do not: EM on those would take every candidate for a match. Bit k says
        -- that rule k of identity_training_rules picked the pair: EM estimates each
        -- comparison's m only on pairs picked by a rule that leaves the comparison free.
        {%- for condition in training_conditions %}
            case when {{ condition }} then {{ 2 ** loop.index0 }} else 0 end
            {%- if not loop.last %} +{% endif %}
        {%- endfor %} as training_rule_mask,
        {{ segmint.identity_comparison_levels('l', 'r') }}
    from blocked
    inner join keyed as l on blocked.record_key_l = l.record_key
    inner join keyed as r on blocked.record_key_r = r.record_key

)

select
    record_id_l,
    record_id_r,
    is_deterministic_pair,
    training_rule_mask > 0 as is_training_pair,
    training_rule_mask,
    {%- for c in segmint.identity_comparisons() %}
        gamma_{{ c }}{% if not loop.last %},{% endif %}
    {%- endfor %}
from final
