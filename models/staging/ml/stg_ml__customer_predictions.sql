-- The predictions asset's current scores (Dagster asset ml/customer_predictions,
-- segmint/predictions.py), one row per customer, with each score's percentile among the
-- customers scored so that audience rules can say "top decile" on any business. Empty until
-- the asset has run (for example in a plain `dbt build`).
with

source as (

    {{ segmint.source_or_empty(source('ml', 'customer_predictions'), [
        ['customer_id', 'varchar'],
        ['probability_alive', 'double'],
        ['expected_purchases_30d', 'double'],
        ['expected_purchases_90d', 'double'],
        ['expected_purchases_365d', 'double'],
        ['expected_spend', 'double'],
        ['predicted_clv', 'double'],
        ['churn_probability', 'double'],
        ['purchase_probability_30d', 'double'],
        ['model_version', 'varchar'],
        ['scored_at', 'timestamp'],
    ]) }}

),

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
