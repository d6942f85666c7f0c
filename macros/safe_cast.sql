{% macro duckdb__safe_cast(field, type) -%}
    {#- dbt's default safe_cast is a plain cast on DuckDB; try_cast gives null on bad input
        as Snowflake's try_cast does. -#}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
