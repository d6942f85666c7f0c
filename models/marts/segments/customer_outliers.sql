-- Outlier flags on monetary value and engagement, for review: flagged here, never dropped
-- from any mart. A customer is an outlier on a metric when it lies beyond the Tukey fences
-- (more than 1.5 interquartile ranges outside the quartiles) or more than 3 standard
-- deviations from the mean, both computed over the customers with a non-zero value.
{%- set metrics = ['monetary', 'engagement_score'] %}

with

profile as (

    select * from {{ ref('customer_profile') }}

),

stats as (

    select
        {%- for m in metrics %}
            avg(case when {{ m }} > 0 then {{ m }} end) as {{ m }}_mean,
            stddev_samp(case when {{ m }} > 0 then {{ m }} end) as {{ m }}_stddev,
            percentile_cont(0.25) within group (order by case when {{ m }} > 0 then {{ m }} end)
                as {{ m }}_q1,
            percentile_cont(0.75) within group (order by case when {{ m }} > 0 then {{ m }} end)
                as {{ m }}_q3,
        {%- endfor %}
        count(*) as customer_count
    from profile

),

scored as (

    select
        profile.customer_id,
        {%- for m in metrics %}
            cast(profile.{{ m }} as double) as {{ m }},
            (profile.{{ m }} - stats.{{ m }}_mean) / nullif(stats.{{ m }}_stddev, 0) as {{ m }}_z,
            profile.{{ m }} > 0
            and (
                profile.{{ m }} > stats.{{ m }}_q3 + 1.5 * (stats.{{ m }}_q3 - stats.{{ m }}_q1)
                or profile.{{ m }} < stats.{{ m }}_q1 - 1.5 * (stats.{{ m }}_q3 - stats.{{ m }}_q1)
            ) as is_{{ m }}_iqr_outlier,
        {%- endfor %}
        stats.customer_count
    from profile
    cross join stats

),

final as (

    select
        customer_id,
        monetary,
        monetary_z,
        coalesce(is_monetary_iqr_outlier or abs(monetary_z) > 3, false) as is_monetary_outlier,
        engagement_score,
        engagement_score_z,
        coalesce(is_engagement_score_iqr_outlier or abs(engagement_score_z) > 3, false)
            as is_engagement_outlier
    from scored

)

select * from final
