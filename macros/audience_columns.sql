{#- The columns audience conditions may use: customer_profile's documented (contracted)
    columns from the graph; in dbt unit tests, which compile without the graph, the columns
    of the built customer_profile relation. -#}
{%- macro audience_columns() -%}
    {%- set node = (graph.get('nodes') or {}).get('model.segmint.customer_profile') -%}
    {%- if node -%}
        {{ return(node.columns.keys() | list) }}
    {%- endif -%}
    {%- set profile = adapter.get_relation(target.database, 'marts', 'customer_profile') -%}
    {{ return(adapter.get_columns_in_relation(profile) | map(attribute='name') | list) }}
{%- endmacro -%}
