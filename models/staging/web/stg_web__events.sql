{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

-- Web events are the volume: unlike the other staging models (views) this one is an
-- incremental table. A run reads only the raw rows loaded since the last run, keeps the
-- latest version of each event among them, and replaces older versions already here.
with

source as (

    select * from {{ source('web', 'web_events') }}
    {% if is_incremental() -%}
        where _loaded_at > (
            select coalesce(max(loaded_at), cast('1900-01-01' as timestamp)) from {{ this }}
        )
    {%- endif %}

),

country_aliases as (

    select * from {{ ref('country_aliases') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by trim(event_id)
        order by _loaded_at desc, _source_row desc
    ) = 1

),

final as (

    select
        trim(latest.event_id) as event_id,
        trim(latest.anonymous_id) as anonymous_id,
        nullif(trim(latest.user_id), '') as shop_account_id,
        {{ segmint.normalize_email('latest.email') }} as email,
        {{ segmint.hash_pii(segmint.normalize_email('latest.email')) }} as email_hash,
        lower(trim(latest.event_type)) as event_type,
        {{ segmint.to_utc_timestamp('latest.occurred_at') }} as occurred_at,
        latest.page_url,
        nullif(trim(latest.referrer), '') as referrer,
        lower(nullif(trim(latest.utm_source), '')) as utm_source,
        lower(nullif(trim(latest.utm_medium), '')) as utm_medium,
        lower(nullif(trim(latest.utm_campaign), '')) as utm_campaign,
        lower(nullif(trim(latest.device_type), '')) as device_type,
        nullif(trim(latest.os), '') as os,
        country_aliases.country_code,
        nullif(trim(latest.product_id), '') as product_id,
        lower(nullif(trim(latest.category), '')) as category,
        latest.price,
        latest.scroll_depth_pct,
        latest.engaged_seconds,
        latest.properties as properties_json,
        latest._loaded_at as loaded_at
    from latest
    left join country_aliases
        on lower(trim(latest.country)) = country_aliases.alias

)

select * from final
