{% macro date_diff(datepart, start_expression, end_expression) -%}
    {{ return(adapter.dispatch('date_diff', 'segmint')(datepart, start_expression, end_expression)) }}
{%- endmacro %}

{% macro default__date_diff(datepart, start_expression, end_expression) -%}
    datediff({{ datepart }}, {{ start_expression }}, {{ end_expression }})
{%- endmacro %}

{% macro duckdb__date_diff(datepart, start_expression, end_expression) -%}
    date_diff('{{ datepart }}', {{ start_expression }}, {{ end_expression }})
{%- endmacro %}
