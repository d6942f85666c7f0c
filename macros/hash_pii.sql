{% macro hash_pii(expression) -%}
    {{ return(adapter.dispatch('hash_pii', 'segmint')(expression)) }}
{%- endmacro %}

{% macro pii_salt() -%}
    {#- The salt of every personal-data hash, read from the warehouse (privacy.pii_salt) so
        that it never appears in SQL text, compiled files, the manifest or logs. -#}
    {{ return("(select salt from " ~ source('segmint_privacy', 'pii_salt') ~ ")") }}
{%- endmacro %}

{% macro default__hash_pii(expression) -%}
    case when {{ expression }} is not null then sha2({{ segmint.pii_salt() }} || {{ expression }}, 256) end
{%- endmacro %}

{% macro duckdb__hash_pii(expression) -%}
    case when {{ expression }} is not null then sha256({{ segmint.pii_salt() }} || {{ expression }}) end
{%- endmacro %}

{% macro check_pii_salt() -%}
    {#- on-run-start: the salt must be stored (one row), and the public development salt is
        refused outside the dev and ci targets (segmint.config.DEV_TARGETS holds the same rule
        for Python). -#}
    {%- if execute -%}
        {%- set relation = adapter.get_relation(
            database=target.database, schema='privacy', identifier='pii_salt') -%}
        {%- set how = "on DuckDB, dbt's connection stores SEGMINT_PII_SALT there (profiles.yml, "
            ~ "plugin segmint.dbt_plugin); on Snowflake, run `segmint privacy store-salt` once" -%}
        {%- if relation is none -%}
            {{ exceptions.raise_compiler_error("no PII salt in the warehouse (privacy.pii_salt): " ~ how) }}
        {%- endif -%}
        {%- set counts = run_query(
            "select count(*), sum(case when is_development then 1 else 0 end) from " ~ relation) -%}
        {%- if counts.columns[0].values()[0] == 0 -%}
            {{ exceptions.raise_compiler_error("no PII salt in the warehouse (" ~ relation ~ " is empty): " ~ how) }}
        {%- endif -%}
        {%- if counts.columns[0].values()[0] != 1 -%}
            {{ exceptions.raise_compiler_error(relation ~ " must hold exactly one salt: " ~ how) }}
        {%- endif -%}
        {%- if counts.columns[1].values()[0] and target.name not in ['dev', 'ci'] -%}
            {{ exceptions.raise_compiler_error(
                "target '" ~ target.name ~ "' uses the public development PII salt: set "
                ~ "SEGMINT_PII_SALT to a secret value in a new warehouse") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
