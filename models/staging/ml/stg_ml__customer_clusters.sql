-- The clustering asset (Dagster asset ml/customer_clusters) may not have run yet, for
-- example in a plain `dbt build`: then no customer has a cluster, and this model is empty.
with

source as (

    {{ segmint.source_or_empty(source('ml', 'customer_clusters'), [
        ['customer_id', 'varchar'],
        ['segment_id', 'bigint'],
        ['segment_name', 'varchar'],
        ['confidence', 'double'],
        ['reason_codes', 'varchar'],
        ['model_version', 'varchar'],
        ['scored_at', 'timestamp'],
    ]) }}

),

final as (

    select
        customer_id,
        segment_id,
        segment_name,
        confidence,
        reason_codes,
        model_version,
        scored_at
    from source

)

select * from final
