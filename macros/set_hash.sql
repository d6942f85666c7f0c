{% macro set_hash(expression) -%}
    {#- An aggregate: one 64-bit hash of the set of values in a group, whatever their order
        (the XOR of the values' hashes). Used to tell whether a record's edges changed. -#}
    {{ return(adapter.dispatch('set_hash', 'segmint')(expression)) }}
{%- endmacro %}

{% macro default__set_hash(expression) -%}
    bitxor_agg(hash({{ expression }}))
{%- endmacro %}

{% macro duckdb__set_hash(expression) -%}
    bit_xor(hash({{ expression }}))
{%- endmacro %}
