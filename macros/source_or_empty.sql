{#- The rows of a source a Python asset writes, or, before that asset has first run (a plain
    `dbt build`), no rows with the documented columns: `columns` is a list of
    [name, type] pairs. -#}
{%- macro source_or_empty(relation, columns) -%}
    {%- set exists = adapter.get_relation(relation.database, relation.schema, relation.identifier) if execute else none -%}
    {%- if exists is not none -%}
        select * from {{ relation }}
    {%- else -%}
        select
        {%- for name, type in columns %}
            cast(null as {{ type }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
        where false
    {%- endif -%}
{%- endmacro -%}
