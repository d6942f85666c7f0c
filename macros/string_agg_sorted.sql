{% macro string_agg_sorted(expression, separator) -%}
    {{ return(adapter.dispatch('string_agg_sorted', 'segmint')(expression, separator)) }}
{%- endmacro %}

{% macro default__string_agg_sorted(expression, separator) -%}
    listagg({{ expression }}, '{{ separator }}') within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__string_agg_sorted(expression, separator) -%}
    string_agg({{ expression }}, '{{ separator }}' order by {{ expression }})
{%- endmacro %}
