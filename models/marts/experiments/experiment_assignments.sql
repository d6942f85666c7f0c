-- One row per experiment and customer ever assigned: the arm and the entry date. Experiments
-- are declared per audience in _audiences.yml (`experiment:`), plus the global holdout (var
-- global_holdout_share); see docs/experiments.md.
-- - The arm is a deterministic hash of experiment id and customer id (hex_fraction of
--   md5('<experiment>:<customer>') below holdout_share: holdout), the same on every
--   warehouse and every run.
-- - A customer enters on the as_of_date of the first run that finds them in the audience
--   (for the global holdout: in any segment) and keeps that row for good: leaving the
--   audience, a later change of holdout_share or a re-run never moves them (append only).
-- - Identity merges: the surviving customer id keeps its own arm and entry; the merged-away
--   id's row stays as it was and matches no customer any more.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}
{%- set experiments = segmint.experiments() if execute else [] %}

with

as_of as (

    select * from {{ ref('int_segments__as_of') }}

),

segments as (

    select * from {{ ref('customer_segments') }}

),

members as (

    {% for e in experiments -%}
        select distinct
            '{{ e.experiment_id }}' as experiment_id,
            {% if e.audience_name -%}
                '{{ e.audience_name }}'
            {%- else -%}
                cast(null as varchar)
            {%- endif %} as audience_name,
            cast({{ e.holdout_share }} as double) as holdout_share,
            customer_id
        from segments
        {% if e.audience_name -%}
            where segment_type = 'rule' and segment_name = '{{ e.audience_name }}'
        {%- endif %}
        union all
    {% endfor -%}
    select
        cast(null as varchar) as experiment_id,
        cast(null as varchar) as audience_name,
        cast(null as double) as holdout_share,
        cast(null as varchar) as customer_id
    where 1 = 0

),

new_members as (

    select members.*
    from members
    {% if is_incremental() -%}
        left join {{ this }} as assigned
            on
                members.experiment_id = assigned.experiment_id
                and members.customer_id = assigned.customer_id
        where assigned.customer_id is null
    {%- endif %}

),

hashed as (

    select
        *,
        {{ dbt.hash("experiment_id || ':' || customer_id") }} as assignment_hash
    from new_members

),

final as (

    select
        hashed.experiment_id || ':' || hashed.customer_id as assignment_id,
        hashed.experiment_id,
        hashed.audience_name,
        hashed.customer_id,
        case
            when {{ segmint.hex_fraction('hashed.assignment_hash') }} < hashed.holdout_share
                then 'holdout'
            else 'treatment'
        end as arm,
        {{ segmint.hex_fraction('hashed.assignment_hash') }} as assignment_fraction,
        hashed.holdout_share,
        as_of.as_of_date as entry_date
    from hashed
    cross join as_of

)

select * from final
