-- Per customer and category: product views in the 90 days ending on as_of_date and their
-- share of the customer's product views; rank 1 is the top category (ties: the category
-- viewed most recently, then by name).
with

as_of as (

    select * from {{ ref('int_segments__as_of') }}

),

events as (

    select * from {{ ref('fct_web_events') }}

),

customers as (

    select customer_id from {{ ref('dim_customers') }}
    where not is_erased

),

views as (

    select
        events.customer_id,
        events.category,
        count(*) as product_views_90d,
        max(events.occurred_at) as last_viewed_at
    from events
    cross join as_of
    inner join customers on events.customer_id = customers.customer_id
    where
        events.event_type = 'product_view'
        and events.category is not null
        and events.occurred_at < as_of.as_of_end_at
        and {{ segmint.date_diff('day', 'events.event_date', 'as_of.as_of_date') }} < 90
    group by events.customer_id, events.category

),

final as (

    select
        customer_id,
        category,
        product_views_90d,
        cast(product_views_90d as double)
        / sum(product_views_90d) over (partition by customer_id) as view_share_90d,
        row_number() over (
            partition by customer_id
            order by product_views_90d desc, last_viewed_at desc, category asc
        ) as category_rank
    from views

)

select * from final
