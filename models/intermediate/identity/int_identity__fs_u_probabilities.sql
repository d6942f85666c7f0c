-- u probabilities: how often each comparison level occurs between two random records (almost
-- all of which are different people). The top level of each comparison is exact agreement on
-- one column: its u is counted exactly from how often each value occurs (two random records
-- share value v with probability n_v (n_v - 1) / (n (n - 1))). The lower levels (near
-- agreement) are estimated from random pairs, taken in a fixed hash order of the records so
-- that the estimate is the same on every run and every warehouse; exact agreement is too
-- rare for a sample to measure well (a birth date: about 1 random pair in 20,000).
{#- Levels of each comparison, as identity_comparison_levels defines them. #}
{%- set level_counts = segmint.identity_comparisons() %}
{%- set exact_columns = segmint.identity_exact_columns() %}

-- The records are read from the model where each part needs them, not through an import CTE:
-- a CTE read more than once is materialized first, every column of every record.
with

-- Positions are numbered on the ids alone, then the random pairs are formed on those narrow
-- rows: a window over whole records would sort every comparison key along with them, and
-- joining whole records once per offset would build one wide hash table per offset.
positions as (

    select
        record_id,
        row_number() over (
            order by {{ dbt.hash('record_id') }}, record_id
        ) as sample_position,
        count(*) over () as record_count
    from {{ ref('int_identity__match_candidates') }}

),

offsets as (

    {%- for offset in [1, 7, 31, 101, 313] %}
        select {{ offset }} as pair_offset
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

random_ids as (

    select
        l.record_id as record_id_l,
        r.record_id as record_id_r
    from positions as l
    inner join offsets on l.record_count > offsets.pair_offset
    inner join positions as r
        on r.sample_position = mod(l.sample_position + offsets.pair_offset - 1, l.record_count) + 1
    where l.sample_position <= {{ var('identity_u_sample_records') }}

),

random_pairs as (

    select
        {{ segmint.identity_comparison_levels('l', 'r') }}
    from random_ids
    inner join {{ ref('int_identity__match_candidates') }} as l
        on random_ids.record_id_l = l.record_id
    inner join {{ ref('int_identity__match_candidates') }} as r
        on random_ids.record_id_r = r.record_id

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

-- Exact agreement among records with the column present. Plus-one smoothing keeps u above
-- 0 when every value is unique, and below 1 when there is only one value.
exact_agreement as (

    {%- for comparison, column in exact_columns.items() %}
        select
            '{{ comparison }}' as comparison_name,
            {{ level_counts[comparison] - 1 }} as comparison_level,
            (coalesce(sum(value_count * (value_count - 1.0)), 0) + 1)
            / (coalesce(sum(value_count) * (sum(value_count) - 1.0), 0) + 2) as u_probability
        from (
            select count(*) as value_count
            from {{ ref('int_identity__match_candidates') }}
            where {{ column }} is not null
            group by {{ column }}
        ) as value_counts
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

-- The lower levels share what exact agreement leaves (1 - its u) as the random pairs do;
-- add-one smoothing keeps a level never seen among them from having u = 0.
final as (

    select
        level_grid.comparison_name,
        level_grid.comparison_level,
        case
            when level_grid.comparison_level = exact_agreement.comparison_level
                then exact_agreement.u_probability
            else
                (1 - exact_agreement.u_probability)
                * (coalesce(counted.pair_count, 0) + 1.0)
                / (
                    sum(
                        case
                            when level_grid.comparison_level <> exact_agreement.comparison_level
                                then coalesce(counted.pair_count, 0)
                            else 0
                        end
                    ) over (partition by level_grid.comparison_name)
                    + count(*) over (partition by level_grid.comparison_name)
                    - 1
                )
        end as u_probability
    from level_grid
    inner join exact_agreement on level_grid.comparison_name = exact_agreement.comparison_name
    left join counted
        on
            level_grid.comparison_name = counted.comparison_name
            and level_grid.comparison_level = counted.comparison_level

)

select * from final
