-- The match probability at or above which a scored pair becomes an edge of the graph. One row.
--
-- var identity_match_threshold: 'auto' (default) calibrates it from the model: the cut-off
-- that maximises the F1 the model itself expects. Taking the scored pairs from the most to
-- the least probable, the first k of them hold sum(p) expected matches, k - sum(p) expected
-- false links, and leave out the expected matches below; expected F1 = 2 sum(p) / (k + all
-- expected matches). It is then raised to var identity_min_match_probability (0.5): a pair is
-- never linked when the model thinks it more likely apart than together. A number instead of
-- 'auto' is used as it is. Either way the expected precision and recall of the chosen cut-off
-- (over the scored pairs, as the model sees them) are recorded here.
{%- set configured = var('identity_match_threshold') %}
{%- set floor = var('identity_min_match_probability') %}

with

scored as (

    select match_probability from {{ ref('int_identity__scored_pairs') }}

),

ranked as (

    select
        match_probability,
        count(*) over (
            order by match_probability desc rows between unbounded preceding and current row
        ) as linked_pairs,
        sum(match_probability) over (
            order by match_probability desc rows between unbounded preceding and current row
        ) as expected_true_links,
        sum(match_probability) over () as expected_matches
    from scored

),

{%- if configured == 'auto' %}

    best as (

        select
            match_probability as calibrated_threshold,
            2 * expected_true_links / (linked_pairs + expected_matches) as expected_f1
        from ranked
        order by expected_f1 desc, match_probability desc
        limit 1

    ),

    chosen as (

        select
            'expected_f1' as threshold_method,
            greatest(coalesce(max(calibrated_threshold), {{ floor }}), {{ floor }}) as match_threshold
        from best

    ),

{%- else %}

chosen as (

    select
        'configured' as threshold_method,
        cast({{ configured }} as double) as match_threshold

),

{%- endif %}

at_threshold as (

    select
        count(*) as linked_pairs,
        sum(scored.match_probability) as expected_true_links
    from scored
    cross join chosen
    where scored.match_probability >= chosen.match_threshold

),

final as (

    select
        chosen.match_threshold,
        chosen.threshold_method,
        at_threshold.linked_pairs,
        (select count(*) from scored) as scored_pairs,
        at_threshold.expected_true_links / nullif(at_threshold.linked_pairs, 0)
            as expected_precision,
        at_threshold.expected_true_links
        / nullif((select max(ranked.expected_matches) from ranked), 0) as expected_recall
    from chosen
    cross join at_threshold

)

select * from final
