{#- `dbt run-operation check_audiences --args '{audiences: [...]}'`: compiles audiences
    against customer_profile's documented columns and prints the SQL; an invalid audience
    fails with the compiler's message. Without args, checks the shipped audiences. -#}
{%- macro check_audiences(audiences=none) -%}
    {%- set node = graph.nodes['model.segmint.customer_audiences'] -%}
    {%- set audiences = audiences if audiences is not none else node.config.meta.audiences -%}
    {%- set sql = segmint.audiences_sql(audiences, 'customer_profile', segmint.audience_columns()) -%}
    {{ print(sql) }}
{%- endmacro -%}
