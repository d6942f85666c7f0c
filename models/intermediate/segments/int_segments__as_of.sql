-- The point in time every customer mart is computed as of: the var as_of_date, or by default
-- the latest order date in the data. Orders count up to and including as_of_date; events
-- up to (excluding) as_of_end_at, midnight after it.
{%- set as_of = var('as_of_date', none) %}
{%- if as_of and not modules.re.match('^\\d{4}-\\d{2}-\\d{2}$', as_of | string) %}
    {{ exceptions.raise_compiler_error("var as_of_date must be a date 'YYYY-MM-DD', got '" ~ as_of ~ "'") }}
{%- endif %}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

as_of as (

    {% if as_of -%}
        select cast('{{ as_of }}' as date) as as_of_date
    {%- else -%}
        select coalesce(max(order_date), current_date) as as_of_date
        from orders
    {%- endif %}

),

final as (

    select
        as_of_date,
        cast({{ dbt.dateadd('day', 1, 'as_of_date') }} as timestamp) as as_of_end_at
    from as_of

)

select * from final
