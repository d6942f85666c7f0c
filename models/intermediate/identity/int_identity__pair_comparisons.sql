-- Candidate pairs of contact records from the blocking rules, with their comparison vector.
with

candidates as (

    select * from {{ ref('int_identity__match_candidates') }}

),

blocked as (

    {%- set rules = [
        ['last_name_key', 'date_of_birth'],
        ['first_name_canonical', 'last_name_key', 'city_key'],
        ['last_name_key', 'postcode_key'],
        ['email_local'],
        ['first_name_canonical', 'date_of_birth', 'city_key'],
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
        {{ segmint.identity_comparison_levels('l', 'r') }}
    from blocked
    inner join candidates as l on blocked.record_id_l = l.record_id
    inner join candidates as r on blocked.record_id_r = r.record_id

)

select * from final
