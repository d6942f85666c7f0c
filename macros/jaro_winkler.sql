{% macro jaro_winkler(a, b) -%}
    {{ return(adapter.dispatch('jaro_winkler', 'segmint')(a, b)) }}
{%- endmacro %}

{% macro default__jaro_winkler(a, b) -%}
    (jarowinkler_similarity({{ a }}, {{ b }}) / 100.0)
{%- endmacro %}

{% macro duckdb__jaro_winkler(a, b) -%}
    jaro_winkler_similarity({{ a }}, {{ b }})
{%- endmacro %}
