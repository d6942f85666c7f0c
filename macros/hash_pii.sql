{% macro hash_pii(expression) -%}
    {{ return(adapter.dispatch('hash_pii', 'segmint')(expression)) }}
{%- endmacro %}

{% macro default__hash_pii(expression) -%}
    {%- set salt = env_var('SEGMINT_PII_SALT', 'segmint-dev-salt') | replace("'", "''") -%}
    case when {{ expression }} is not null then sha2('{{ salt }}' || {{ expression }}, 256) end
{%- endmacro %}

{% macro duckdb__hash_pii(expression) -%}
    {%- set salt = env_var('SEGMINT_PII_SALT', 'segmint-dev-salt') | replace("'", "''") -%}
    case when {{ expression }} is not null then sha256('{{ salt }}' || {{ expression }}) end
{%- endmacro %}
