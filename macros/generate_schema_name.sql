{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- A custom schema is used as is (staging, marts, ...), not prefixed with the target
        schema, so BI tools and the CRM sync find the same names on every target. -#}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
