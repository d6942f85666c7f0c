{% macro create_input_fingerprint_store() -%}
    {#- on-run-start: input_fingerprint_store, if missing, so that cached_table models read it
        without asking first whether it exists. Committed here: dbt-duckdb rolls back what
        on-run-start hooks leave open. -#}
    {%- if execute -%}
        {%- set store = segmint.input_fingerprint_store() -%}
        {%- do adapter.create_schema(store) -%}
        {%- call statement('create_input_fingerprint_store') -%}
            create table if not exists {{ store }} (
                relation_name {{ dbt.type_string() }},
                input_fingerprint {{ dbt.type_string() }},
                built_at {{ dbt.type_timestamp() }}
            )
        {%- endcall -%}
        {%- do adapter.commit() -%}
    {%- endif -%}
{%- endmacro %}
