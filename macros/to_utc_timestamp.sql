{% macro to_utc_timestamp(expression) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'segmint')(expression)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(expression) -%}
    cast(convert_timezone('UTC', try_cast({{ expression }} as timestamp_tz)) as timestamp_ntz)
{%- endmacro %}

{% macro duckdb__to_utc_timestamp(expression) -%}
    cast(timezone('UTC', try_cast({{ expression }} as timestamptz)) as timestamp)
{%- endmacro %}
