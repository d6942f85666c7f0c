{% macro input_fingerprint_store(relation) -%}
    {#- The table where cached_table keeps the key of each build of the schema's models. -#}
    {{ return(api.Relation.create(
        database=relation.database, schema=relation.schema, identifier='dbt_input_fingerprints')) }}
{%- endmacro %}
