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

{% macro identity_training_rules() -%}
    {#- The rules that pick EM's training pairs among the candidates: each is a list of
        match-candidate columns that must agree exactly, with the comparisons whose levels
        that agreement fixes. A pair picked by a rule tells EM nothing about the m of the
        comparisons the rule fixes (every such pair agrees there, match or not), so each
        comparison's m is estimated only on the training pairs some rule that leaves it
        free picked (as splink's EM sessions leave out their blocking rule's comparisons).
        Bit k of a pair's training_rule_mask is rule k. -#}
    {{ return([
        {'keys': ['last_name_key', 'date_of_birth'], 'fixes': ['last_name', 'date_of_birth']},
        {'keys': ['first_name_canonical', 'last_name_key'], 'fixes': ['first_name', 'last_name']},
        {'keys': ['first_name_canonical', 'date_of_birth'], 'fixes': ['first_name', 'date_of_birth']},
        {'keys': ['date_of_birth', 'first_initial'], 'fixes': ['date_of_birth', 'first_name']},
        {'keys': ['date_of_birth', 'city_key'], 'fixes': ['date_of_birth', 'city']},
        {'keys': ['last_name_key', 'postcode_key'], 'fixes': ['last_name', 'postcode']},
        {'keys': ['email_local'], 'fixes': ['email']},
    ]) }}
{%- endmacro %}

{% macro identity_deterministic_fixes() -%}
    {#- The comparisons whose levels the deterministic graph fixes on the pairs it joins
        (they share an email or a phone): those pairs train EM's m of every other
        comparison, as a training rule does (identity_training_rules). -#}
    {{ return(['email', 'phone']) }}
{%- endmacro %}
