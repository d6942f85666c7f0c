{#- The consent purposes of seeds/consent_purposes.csv, for SQL that needs them at compile
    time (one has_<purpose>_consent column each). The singular test
    tests/dbt/marts/core/consent_purposes_match_seed.sql fails when the two disagree. -#}
{% macro consent_purposes() %}
    {{ return(['email_marketing', 'sms_marketing', 'personalization', 'analytics']) }}
{% endmacro %}
