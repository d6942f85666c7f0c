-- The clustering asset (Dagster asset ml/customer_clusters) may not have run yet, for
-- example in a plain `dbt build`: then no customer has a cluster, and this model is empty.
{%- set src = source('ml', 'customer_clusters') %}
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
            cast(null as bigint) as segment_id,
            cast(null as varchar) as segment_name,
            cast(null as double) as confidence,
            cast(null as varchar) as reason_codes,
            cast(null as varchar) as model_version,
            cast(null as timestamp) as scored_at
        where false

    ),

{% endif %}

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
