{% macro identity_comparisons() -%}
    {#- The comparisons of Fellegi-Sunter matching and the number of agreement levels of each
        (0 = disagree up to the top level), as identity_comparison_levels computes them:
        the one list the u estimation, EM and scoring read. -#}
    {{ return({
        'first_name': 4, 'last_name': 4, 'date_of_birth': 4, 'city': 3, 'postcode': 3,
        'street': 3, 'email': 2, 'phone': 2
    }) }}
{%- endmacro %}
