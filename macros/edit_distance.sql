{% macro edit_distance(a, b) -%}
    {{ return(adapter.dispatch('edit_distance', 'segmint')(a, b)) }}
{%- endmacro %}

{% macro default__edit_distance(a, b) -%}
    editdistance({{ a }}, {{ b }})
{%- endmacro %}

{% macro duckdb__edit_distance(a, b) -%}
    levenshtein({{ a }}, {{ b }})
{%- endmacro %}
