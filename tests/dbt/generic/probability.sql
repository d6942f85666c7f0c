{#- A probability column: every non-null value lies in [0, 1]. -#}
{% test probability(model, column_name) %}

    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} < 0 or {{ column_name }} > 1

{% endtest %}
