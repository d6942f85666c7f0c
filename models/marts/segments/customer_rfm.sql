-- RFM as of as_of_date. Scores are quintiles of the share of buyers strictly worse:
-- score = 1 + floor(5 * buyers strictly worse / buyers). Equal values always get equal
-- scores (a tie takes the score of its first place, so one-time buyers all get F = 1);
-- when every buyer has the same value (a lone buyer, say) the metric tells nothing and
-- everyone scores 3. Recency is worse when longer ago, frequency and monetary when lower.
-- Customers without a completed order are prospects: no scores, segment Prospects.
with

as_of as (

    select * from {{ ref('int_segments__as_of') }}

),

customers as (

    select customer_id from {{ ref('dim_customers') }}
    where not is_erased

),

orders as (

    select * from {{ ref('int_segments__customer_orders') }}

),

segment_map as (

    select * from {{ ref('rfm_segments') }}

),

buyers as (

    select
        orders.customer_id,
        orders.first_order_date,
        orders.last_order_date,
        {{ segmint.date_diff('day', 'orders.last_order_date', 'as_of.as_of_date') }} as recency_days,
        orders.completed_order_count as frequency,
        orders.completed_amount as monetary
    from orders
    inner join customers on orders.customer_id = customers.customer_id
    cross join as_of
    where orders.completed_order_count > 0

),

ranked as (

    select
        *,
        count(*) over () as buyer_count,
        rank() over (order by recency_days desc) - 1 as r_worse,
        rank() over (order by frequency asc) - 1 as f_worse,
        rank() over (order by monetary asc) - 1 as m_worse,
        min(recency_days) over () = max(recency_days) over () as r_constant,
        min(frequency) over () = max(frequency) over () as f_constant,
        min(monetary) over () = max(monetary) over () as m_constant
    from buyers

),

scored as (

    select
        customer_id,
        first_order_date,
        last_order_date,
        recency_days,
        frequency,
        monetary,
        cast(
            case when r_constant then 3 else least(5, 1 + floor(5.0 * r_worse / buyer_count)) end
            as integer
        ) as r_score,
        cast(
            case when f_constant then 3 else least(5, 1 + floor(5.0 * f_worse / buyer_count)) end
            as integer
        ) as f_score,
        cast(
            case when m_constant then 3 else least(5, 1 + floor(5.0 * m_worse / buyer_count)) end
            as integer
        ) as m_score
    from ranked

),

with_fm as (

    select
        *,
        cast(floor((f_score + m_score + 1) / 2.0) as integer) as fm_score
    from scored

),

final as (

    select
        customers.customer_id,
        as_of.as_of_date,
        with_fm.recency_days,
        coalesce(with_fm.frequency, 0) as frequency,
        cast(coalesce(with_fm.monetary, 0) as decimal(18, 2)) as monetary,
        '{{ var("reporting_currency") }}' as currency_code,
        with_fm.r_score,
        with_fm.f_score,
        with_fm.m_score,
        with_fm.fm_score,
        cast(with_fm.r_score as varchar)
        || cast(with_fm.f_score as varchar)
        || cast(with_fm.m_score as varchar) as rfm_cell,
        coalesce(segment_map.rfm_segment, 'Prospects') as rfm_segment,
        with_fm.customer_id is null as is_prospect,
        with_fm.first_order_date,
        with_fm.last_order_date
    from customers
    cross join as_of
    left join with_fm on customers.customer_id = with_fm.customer_id
    left join segment_map
        on
            with_fm.r_score = segment_map.r_score
            and with_fm.fm_score = segment_map.fm_score

)

select * from final
