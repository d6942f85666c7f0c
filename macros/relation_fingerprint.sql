{% macro relation_fingerprint(relation) -%}
    {#- SQL: a fingerprint of the content of `relation` (aliased `t`), whatever the order of its
        rows: its row count and the set_hash of its rows, as text. -#}
    {{ return(adapter.dispatch('relation_fingerprint', 'segmint')(relation)) }}
{%- endmacro %}

{% macro default__relation_fingerprint(relation) -%}
    {#- Every column named: `hash(*)` is Snowflake's, not every engine that speaks its SQL has
        it; the hash as text, since engines disagree on its sign. -#}
    {%- set columns = adapter.get_columns_in_relation(relation) -%}
    {%- set row = [] -%}
    {%- for column in columns -%}
        {%- do row.append('t.' ~ column.quoted) -%}
    {%- endfor -%}
    cast(count(*) as {{ dbt.type_string() }}) || ':'
    || coalesce(cast({{ segmint.set_hash(row | join(', ')) }} as {{ dbt.type_string() }}), '')
{%- endmacro %}

{% macro duckdb__relation_fingerprint(relation) -%}
    cast(count(*) as varchar) || ':' || coalesce(cast({{ segmint.set_hash('t') }} as varchar), '')
{%- endmacro %}
