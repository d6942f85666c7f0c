-- The tone step (Dagster asset enrichment/ticket_tones) may not have run yet, for example
-- in a plain `dbt build`: then no ticket has a tone, and this model is empty.
{%- set tones = source('enrichment', 'ticket_tones') %}
{%- set exists = adapter.get_relation(tones.database, tones.schema, tones.identifier) if execute else none %}

with

{% if exists is not none %}

    source as (

        select * from {{ tones }}

    ),

{% else %}

    source as (

        select
            cast(null as varchar) as ticket_id,
            cast(null as double) as compound_score,
            cast(null as varchar) as tone,
            cast(null as varchar) as model,  -- noqa: RF04
            cast(null as timestamp) as scored_at
        where false

    ),

{% endif %}

final as (

    select
        ticket_id,
        compound_score,
        tone,
        model as tone_model,
        scored_at
    from source

)

select * from final
