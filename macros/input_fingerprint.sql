{% macro input_fingerprint(node, store, name) -%}
    {#- The key of a build of `node` (used by cached_table): an MD5 of its compiled SQL and of
        the content fingerprint of every relation it depends on; and the key `store` holds
        under `name` from its last build (none if it has none). One query for all of them. -#}
    {%- set selects = [] -%}
    {%- for unique_id in node.depends_on.nodes | sort -%}
        {%- set upstream = graph.nodes.get(unique_id) or graph.sources.get(unique_id) -%}
        {%- if upstream is none or not upstream.relation_name -%}
            {{ exceptions.raise_compiler_error(
                node.unique_id ~ " (cached_table) reads " ~ unique_id ~ ", which is not a relation") }}
        {%- endif -%}
        {%- set relation = api.Relation.create(database=upstream.database, schema=upstream.schema,
            identifier=upstream.alias if upstream.alias is defined else upstream.identifier) -%}
        {%- do selects.append("select '" ~ unique_id ~ "' as input_name, "
            ~ segmint.relation_fingerprint(relation) ~ " as fingerprint from " ~ relation ~ " as t") -%}
    {%- endfor -%}
    {%- do selects.append("select '~stored' as input_name, max(input_fingerprint) as fingerprint from "
        ~ store ~ " where relation_name = '" ~ name ~ "'") -%}
    {%- set found = {} -%}
    {%- for row in segmint.query_rows(selects | join('\nunion all\n')) -%}
        {%- do found.update({row['input_name']: row['fingerprint']}) -%}
    {%- endfor -%}
    {%- set parts = [node.compiled_code] -%}
    {%- for name in found.keys() | sort if name != '~stored' -%}
        {%- do parts.append(name ~ '=' ~ found[name]) -%}
    {%- endfor -%}
    {{ return({'key': local_md5(parts | join('\n')), 'stored': found['~stored']}) }}
{%- endmacro %}
