{#-
    Incremental strategy replace_overlapping, for models whose rows are intervals of a
    partition (sessions of a device): the stored rows of the same partition that overlap a
    rebuilt row (closed intervals) are deleted, then the rebuilt rows are inserted. A model
    sets overlap_partition, overlap_start and overlap_end. Used as
    incremental_strategy='replace_overlapping'; dbt finds the macro by that name on every
    adapter.
-#}
{% macro get_incremental_replace_overlapping_sql(arg_dict) %}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set partition = config.get('overlap_partition') -%}
    {%- set start = config.get('overlap_start') -%}
    {%- set end = config.get('overlap_end') -%}
    {%- if not (partition and start and end) -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy replace_overlapping needs overlap_partition, overlap_start "
            ~ "and overlap_end in the config of " ~ model.name) }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}

    delete from {{ target }} stored
    using {{ source }} rebuilt
    where
        rebuilt.{{ partition }} = stored.{{ partition }}
        and rebuilt.{{ start }} <= stored.{{ end }}
        and rebuilt.{{ end }} >= stored.{{ start }};

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ source }}
{% endmacro %}
