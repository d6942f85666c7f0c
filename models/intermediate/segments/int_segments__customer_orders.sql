-- Per customer, the orders placed up to as_of_date, amounts in the reporting currency.
-- An order counts toward frequency and monetary when its status is completed; cancelled
-- and refunded orders (refunds are whole-order in the shop data) count for nothing but
-- their own counters.
with

as_of as (

    select * from {{ ref('int_segments__as_of') }}

),

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null

),

fx_rates as (

    select * from {{ ref('fx_rates') }}

),

counted as (

    select
        orders.customer_id,
        orders.order_date,
        orders.is_completed,
        orders.is_discounted,
        orders.order_status,
        cast(orders.total_amount as double) * fx_rates.rate_to_reporting as amount,
        {{ segmint.date_diff('day', 'orders.order_date', 'as_of.as_of_date') }} as days_ago
    from orders
    cross join as_of
    left join fx_rates on orders.currency_code = fx_rates.currency_code
    where orders.order_date <= as_of.as_of_date

),

final as (

    select
        customer_id,
        min(case when is_completed then order_date end) as first_order_date,
        max(case when is_completed then order_date end) as last_order_date,
        count(case when is_completed then 1 end) as completed_order_count,
        coalesce(sum(case when is_completed then amount end), 0) as completed_amount,
        max(case when is_completed then amount end) as max_order_amount,
        count(case when is_completed and is_discounted then 1 end) as discounted_order_count,
        count(case when is_completed and days_ago < 30 then 1 end) as completed_orders_30d,
        count(case when is_completed and days_ago < 90 then 1 end) as completed_orders_90d,
        count(case when order_status = 'cancelled' then 1 end) as cancelled_order_count,
        count(case when order_status = 'refunded' then 1 end) as refunded_order_count
    from counted
    group by customer_id

)

select * from final
