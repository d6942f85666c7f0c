{% macro create_input_fingerprint_stores() -%}
    {#- on-run-start: the dbt_input_fingerprints table of every schema holding a cached_table
        model, so that the models read it without asking first whether it exists. Committed
        here: dbt-duckdb rolls back what on-run-start hooks leave open. -#}
    {%- if execute -%}
        {%- set schemas = {} -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.config.materialized == 'cached_table' -%}
            {%- do schemas.update({node.database ~ '.' ~ node.schema:
                api.Relation.create(database=node.database, schema=node.schema)}) -%}
        {%- endfor -%}
        {%- for relation in schemas.values() -%}
            {%- do adapter.create_schema(relation) -%}
            {%- call statement('create_input_fingerprint_store') -%}
                create table if not exists {{ segmint.input_fingerprint_store(relation) }} (
                    relation_name {{ dbt.type_string() }},
                    input_fingerprint {{ dbt.type_string() }},
                    built_at {{ dbt.type_timestamp() }}
                )
            {%- endcall -%}
        {%- endfor -%}
        {%- if schemas -%}
            {%- do adapter.commit() -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
