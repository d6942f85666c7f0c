with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

items as (

    select * from {{ ref('stg_shop__order_items') }}

),

record_customers as (

    select * from {{ ref('int_identity__record_customers') }}
    where source_table = 'orders'

),

item_totals as (

    select
        order_id,
        cast(count(*) as bigint) as line_count,
        cast(sum(quantity) as bigint) as unit_count
    from items
    group by order_id

),

final as (

    select
        orders.order_id,
        record_customers.customer_id,
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.order_status,
        orders.order_status = 'completed' as is_completed,
        orders.currency_code,
        orders.total_amount,
        orders.discount_amount,
        orders.is_discounted,
        orders.sales_channel,
        coalesce(item_totals.line_count, cast(0 as bigint)) as line_count,
        coalesce(item_totals.unit_count, cast(0 as bigint)) as unit_count
    from orders
    left join record_customers on orders.order_id = record_customers.source_record_id
    left join item_totals on orders.order_id = item_totals.order_id

)

select * from final
