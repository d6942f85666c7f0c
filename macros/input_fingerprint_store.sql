{% macro input_fingerprint_store() -%}
    {#- The one table where cached_table keeps the key of each model's last build, in the
        schema named by the variable cached_table_schema (not one BI reads). -#}
    {{ return(api.Relation.create(database=target.database,
        schema=var('cached_table_schema'), identifier='dbt_input_fingerprints')) }}
{%- endmacro %}
