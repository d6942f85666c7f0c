{#- The rows of run_query(sql) as dicts keyed by lower-case column names: Snowflake returns
    unquoted names in upper case (and the emulator even quoted ones), DuckDB in lower case. -#}
{%- macro query_rows(sql) -%}
    {%- set result = run_query(sql) -%}
    {%- set names = result.column_names | map('lower') | list -%}
    {%- set rows = [] -%}
    {%- for row in result.rows -%}
        {%- do rows.append(dict(zip(names, row))) -%}
    {%- endfor -%}
    {{ return(rows) }}
{%- endmacro -%}
