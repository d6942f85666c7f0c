-- u probabilities: how often each comparison level occurs between two random records (almost
-- all of which are different people). Random pairs come from a fixed hash order of the
-- records, so the estimate is the same on every run and every warehouse.
{#- Levels of each comparison, as identity_comparison_levels defines them. #}
{%- set level_counts = segmint.identity_comparisons() %}

with

candidates as (

    select * from {{ ref('int_identity__match_candidates') }}

),

-- Positions are numbered on the ids alone (read from the model again: a CTE read twice is
-- materialized first), then joined to the records: a window over the whole rows would sort
-- every comparison key along with them.
positions as (

    select
        record_id,
        row_number() over (
            order by {{ dbt.hash('record_id') }}, record_id
        ) as sample_position,
        count(*) over () as record_count
    from {{ ref('int_identity__match_candidates') }}

),

numbered as (

    select
        candidates.*,
        positions.sample_position,
        positions.record_count
    from candidates
    inner join positions on candidates.record_id = positions.record_id

),

sampled as (

    select * from numbered
    where sample_position <= {{ var('identity_u_sample_records') }}

),

random_pairs as (

    {%- for offset in [1, 7, 31, 101, 313] %}
        select
            {{ segmint.identity_comparison_levels('l', 'r') }}
        from sampled as l
        inner join numbered as r
            on r.sample_position = mod(l.sample_position + {{ offset }} - 1, l.record_count) + 1
        where l.record_count > {{ offset }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

-- Pairs per level of each comparison, counted in one pass over the random pairs (missing
-- values, level -1, are not counted), then one row per comparison level.
level_totals as (

    select
        {%- for comparison, n in level_counts.items() %}
            {%- set outer_last = loop.last %}
            {%- for level in range(n) %}
                count(case when gamma_{{ comparison }} = {{ level }} then 1 end)
                    as pairs_{{ comparison }}_{{ level }}{% if not (outer_last and loop.last) %},{% endif %}
            {%- endfor %}
        {%- endfor %}
    from random_pairs

),

counted as (

    {%- for comparison, n in level_counts.items() %}
        {%- set outer_last = loop.last %}
        {%- for level in range(n) %}
            select
                '{{ comparison }}' as comparison_name,
                {{ level }} as comparison_level,
                pairs_{{ comparison }}_{{ level }} as pair_count
            from level_totals
            {%- if not (outer_last and loop.last) %}
                union all
            {%- endif %}
        {%- endfor %}
    {%- endfor %}

),

level_grid as (

    {%- for comparison, n in level_counts.items() %}
        {%- for level in range(n) %}
            select
                '{{ comparison }}' as comparison_name,
                {{ level }} as comparison_level
            {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
    {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

-- Add-one smoothing keeps a level never seen among random pairs from having u = 0.
final as (

    select
        level_grid.comparison_name,
        level_grid.comparison_level,
        (coalesce(counted.pair_count, 0) + 1.0)
        / (
            sum(coalesce(counted.pair_count, 0)) over (partition by level_grid.comparison_name)
            + count(*) over (partition by level_grid.comparison_name)
        ) as u_probability
    from level_grid
    left join counted
        on
            level_grid.comparison_name = counted.comparison_name
            and level_grid.comparison_level = counted.comparison_level

)

select * from final
