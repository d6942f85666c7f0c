-- One row per customer and rule-based audience they belong to. The audiences are declared
-- in this model's YAML (_audiences.yml, config.meta.audiences) and compiled to SQL by the
-- audiences_sql macro against customer_profile's documented columns and the predictions'
-- (stg_ml__customer_predictions: lifetime value, churn and purchase propensity, null for a
-- customer the predictions asset did not score). A customer in several audiences has
-- is_primary on the one with the lowest priority number.
{#- var audiences_override replaces the YAML list for one invocation (unit tests, trying rules). #}
{%- set audiences = var('audiences_override', none) or (config.get('meta') or {}).get('audiences') %}
{%- set columns = segmint.audience_columns() if execute else [] %}

with

customer_profile as (

    select * from {{ ref('customer_profile') }}

),

predictions as (

    select * from {{ ref('stg_ml__customer_predictions') }}

),

profile as (

    select
        customer_profile.*,
        {{ 'predictions.' ~ segmint.prediction_audience_columns() | join(', predictions.') }}
    from customer_profile
    left join predictions on customer_profile.customer_id = predictions.customer_id

),

members as (

    {% if execute -%}
        {{ segmint.audiences_sql(audiences, 'profile', columns) }}
    {%- else -%}
        select
            customer_id,
            '' as audience_name,
            '' as audience_description,
            0 as priority
        from profile
    {%- endif %}

),

final as (

    select
        customer_id,
        audience_name,
        audience_description,
        cast(priority as integer) as priority,
        row_number() over (
            partition by customer_id order by priority, audience_name
        ) = 1 as is_primary
    from members

)

select * from final
