with

source as (

    select * from {{ source('shop', 'order_items') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by trim(order_id), line_number
        order by _loaded_at desc, _source_row desc
    ) = 1

),

final as (

    select
        trim(order_id) || '-' || cast(line_number as varchar) as order_item_id,
        trim(order_id) as order_id,
        line_number,
        nullif(trim(product_id), '') as product_id,
        lower(nullif(trim(category), '')) as category,
        quantity,
        cast(unit_price as decimal(18, 2)) as unit_price,
        cast(quantity * unit_price as decimal(18, 2)) as line_amount,
        _loaded_at as loaded_at
    from latest

)

select * from final
