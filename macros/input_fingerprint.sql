{% macro input_fingerprint(node, store, name) -%}
    {#- The key of a build of `node` (used by cached_table): an MD5 of its compiled SQL and of a
        fingerprint of every relation it depends on; and the key `store` holds under `name`
        from its last build (none if it has none). One query for all of them.
        An input that is itself a cached_table stands for its stored key, which changes
        whenever its table is built from other inputs (no need to read the table). Any other
        input stands for its content (relation_fingerprint): a view or table built every run
        whose content stayed the same leaves the key as it was. -#}
    {%- set selects = [] -%}
    {%- set keys = {'~stored': name} -%}
    {%- for unique_id in node.depends_on.nodes | sort -%}
        {%- set upstream = graph.nodes.get(unique_id) or graph.sources.get(unique_id) -%}
        {%- if upstream is none or not upstream.relation_name -%}
            {{ exceptions.raise_compiler_error(
                node.unique_id ~ " (cached_table) reads " ~ unique_id ~ ", which is not a relation") }}
        {%- endif -%}
        {%- if upstream.resource_type == 'model' and upstream.config.materialized == 'cached_table' -%}
            {%- do keys.update({unique_id: upstream.schema ~ '.' ~ upstream.alias}) -%}
        {%- else -%}
            {%- set relation = api.Relation.create(database=upstream.database, schema=upstream.schema,
                identifier=upstream.alias if upstream.alias is defined else upstream.identifier) -%}
            {%- do selects.append("select '" ~ unique_id ~ "' as input_name, "
                ~ segmint.relation_fingerprint(relation) ~ " as fingerprint from " ~ relation ~ " as t") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do selects.append("select relation_name as input_name, input_fingerprint as fingerprint from "
        ~ store ~ " where relation_name in ('" ~ (keys.values() | join("', '")) ~ "')") -%}
    {%- set found = {} -%}
    {%- for row in segmint.query_rows(selects | join('\nunion all\n')) -%}
        {%- do found.update({row['input_name']: row['fingerprint']}) -%}
    {%- endfor -%}
    {%- set parts = [node.compiled_code] -%}
    {%- for unique_id in node.depends_on.nodes | sort -%}
        {%- if unique_id in keys -%}
            {#- An input with no stored key (never built as a cached_table): a key that matches
                no other run's, so this model is built. -#}
            {%- do parts.append(unique_id ~ '=key:' ~ found.get(keys[unique_id], invocation_id)) -%}
        {%- else -%}
            {%- do parts.append(unique_id ~ '=' ~ found[unique_id]) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return({'key': local_md5(parts | join('\n')), 'stored': found.get(name)}) }}
{%- endmacro %}
