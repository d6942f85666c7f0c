with

source as (

    select * from {{ source('shop', 'orders') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by trim(order_id)
        order by _loaded_at desc, _source_row desc
    ) = 1

),

final as (

    select
        trim(order_id) as order_id,
        nullif(trim(customer_ref), '') as shop_account_id,
        {{ segmint.normalize_email('email') }} as email,
        {{ segmint.hash_pii(segmint.normalize_email('email')) }} as email_hash,
        {{ segmint.to_utc_timestamp('ordered_at') }} as ordered_at,
        lower(trim(status)) as order_status,
        upper(nullif(trim(currency), '')) as currency_code,
        cast(total_amount as decimal(18, 2)) as total_amount,
        cast(coalesce(discount_amount, 0) as decimal(18, 2)) as discount_amount,
        coalesce(discount_amount, 0) > 0 as is_discounted,
        lower(nullif(trim(channel), '')) as sales_channel,
        _loaded_at as loaded_at
    from latest

)

select * from final
