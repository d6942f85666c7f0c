-- The predictions asset's current scores (Dagster asset ml/customer_predictions,
-- segmint/predictions.py), one row per customer, with each score's percentile among the
-- customers scored so that audience rules can say "top decile" on any business. Empty until
-- the asset has run (for example in a plain `dbt build`).
{%- set src = source('ml', 'customer_predictions') %}
{%- set exists = adapter.get_relation(src.database, src.schema, src.identifier) if execute else none %}

with

{% if exists is not none %}

    source as (

        select * from {{ src }}

    ),

{% else %}

    source as (

        select
            cast(null as varchar) as customer_id,
            cast(null as double) as probability_alive,
            cast(null as double) as expected_purchases_30d,
            cast(null as double) as expected_purchases_90d,
            cast(null as double) as expected_purchases_365d,
            cast(null as double) as expected_spend,
            cast(null as double) as predicted_clv,
            cast(null as double) as churn_probability,
            cast(null as double) as purchase_probability_30d,
            cast(null as varchar) as model_version,
            cast(null as timestamp) as scored_at
        where false

    ),

{% endif %}

final as (

    select
        customer_id,
        probability_alive,
        expected_purchases_30d,
        expected_purchases_90d,
        expected_purchases_365d,
        expected_spend,
        predicted_clv,
        churn_probability,
        purchase_probability_30d,
        case
            when predicted_clv is not null
                then percent_rank() over (
                    partition by predicted_clv is null order by predicted_clv
                )
        end as predicted_clv_percentile,
        case
            when purchase_probability_30d is not null
                then percent_rank() over (
                    partition by purchase_probability_30d is null
                    order by purchase_probability_30d
                )
        end as purchase_probability_30d_percentile,
        model_version,
        scored_at
    from source

)

select * from final
