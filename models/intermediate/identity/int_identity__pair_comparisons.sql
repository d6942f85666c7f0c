-- Candidate pairs of contact records from the blocking rules, with their comparison vector.
-- is_deterministic_pair marks pairs the deterministic graph already joins: they anchor the
-- match class for EM but need no scoring.
with

candidates as (

    select * from {{ ref('int_identity__match_candidates') }}

),

deterministic as (

    select * from {{ ref('int_identity__deterministic_components') }}

),

blocked as (

    {#- Blocking rules: a pair is compared when it agrees exactly on one of these key sets.
        Each keeps blocks small at millions of records (names times birth dates). #}
    {%- set rules = [
        ['last_name_key', 'date_of_birth'],
        ['first_name_canonical', 'last_name_key'],
        ['first_name_canonical', 'date_of_birth'],
        ['date_of_birth', 'first_initial'],
        ['date_of_birth', 'city_key'],
        ['last_name_key', 'postcode_key'],
        ['email_local'],
    ] %}
    {%- for rule in rules %}
        select
            l.record_id as record_id_l,
            r.record_id as record_id_r
        from candidates as l
        inner join candidates as r
            on
                l.record_id < r.record_id
                {%- for key in rule %}
                    and l.{{ key }} = r.{{ key }}
                {%- endfor %}
        {%- if not loop.last %}
            union
        {%- endif %}
    {%- endfor %}

),

final as (

    select
        blocked.record_id_l,
        blocked.record_id_r,
        component_l.component_id = component_r.component_id as is_deterministic_pair,
        {{ segmint.identity_comparison_levels('l', 'r') }}
    from blocked
    inner join candidates as l on blocked.record_id_l = l.record_id
    inner join candidates as r on blocked.record_id_r = r.record_id
    inner join deterministic as component_l on blocked.record_id_l = component_l.record_id
    inner join deterministic as component_r on blocked.record_id_r = component_r.record_id

)

select * from final
