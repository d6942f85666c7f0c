{% macro build_table() -%}
    {#- Builds the current model as the adapter's own `table` materialization does (used by
        `cached_table` once it has found that the inputs changed). -#}
    {{ return(adapter.dispatch('build_table', 'segmint')()) }}
{%- endmacro %}

{% macro default__build_table() -%}
    {{ return(materialization_table_default()) }}
{%- endmacro %}

{% macro duckdb__build_table() -%}
    {{ return(materialization_table_duckdb()) }}
{%- endmacro %}

{% macro snowflake__build_table() -%}
    {{ return(materialization_table_snowflake()) }}
{%- endmacro %}
