{% macro identity_comparisons() -%}
    {#- The comparisons of Fellegi-Sunter matching and the number of agreement levels of each
        (0 = disagree up to the top level), as identity_comparison_levels computes them:
        the one list the u estimation, EM and scoring read. -#}
    {{ return({
        'first_name': 4, 'last_name': 4, 'date_of_birth': 4, 'city': 3, 'postcode': 3,
        'street': 3, 'email': 2, 'phone': 2
    }) }}
{%- endmacro %}

{% macro identity_exact_columns() -%}
    {#- The column whose equality is the top level of each comparison in
        identity_comparison_levels (a null there is the missing level, -1). Its u probability
        is computed exactly from how often each value occurs, and term frequencies adjust
        it in scoring. -#}
    {{ return({
        'first_name': 'first_name_key', 'last_name': 'last_name_key',
        'date_of_birth': 'date_of_birth', 'city': 'city_key', 'postcode': 'postcode_key',
        'street': 'street_key', 'email': 'email_local', 'phone': 'phone_hash'
    }) }}
{%- endmacro %}
