{% macro hash_pii(expression) -%}
    {{ return(adapter.dispatch('hash_pii', 'segmint')(expression)) }}
{%- endmacro %}

{% macro pii_salt() -%}
    {#- The salt of every personal-data hash. The public development salt is refused outside
        the dev and ci targets (segmint.config.DEV_TARGETS holds the same rule for Python). -#}
    {%- set salt = env_var('SEGMINT_PII_SALT', 'segmint-dev-salt') -%}
    {%- if execute and salt == 'segmint-dev-salt' and target.name not in ['dev', 'ci'] -%}
        {{ exceptions.raise_compiler_error(
            "target '" ~ target.name ~ "' uses the public development PII salt: set "
            ~ "SEGMINT_PII_SALT to a secret value") }}
    {%- endif -%}
    {{ return(salt | replace("'", "''")) }}
{%- endmacro %}

{% macro default__hash_pii(expression) -%}
    case when {{ expression }} is not null then sha2('{{ segmint.pii_salt() }}' || {{ expression }}, 256) end
{%- endmacro %}

{% macro duckdb__hash_pii(expression) -%}
    case when {{ expression }} is not null then sha256('{{ segmint.pii_salt() }}' || {{ expression }}) end
{%- endmacro %}
