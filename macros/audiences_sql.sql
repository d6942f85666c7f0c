{#- The SQL selecting every audience's members from `relation`: one `select customer_id,
    audience_name, audience_description, priority ... where <condition>` per audience, joined
    with union all. Checks each audience's name (lower snake case, unique), description,
    priority (integer) and condition against `columns` before any SQL is produced. -#}
{%- macro audiences_sql(audiences, relation, columns) -%}
    {%- if audiences is string or audiences is not sequence or audiences | length == 0 -%}
        {{ exceptions.raise_compiler_error("audiences: expected a non-empty list of audiences") }}
    {%- endif -%}
    {%- set seen = [] -%}
    {%- set selects = [] -%}
    {%- for audience in audiences -%}
        {%- set where = 'audiences[' ~ loop.index0 ~ ']' -%}
        {%- if audience is not mapping -%}
            {{ exceptions.raise_compiler_error(where ~ ": an audience must be a mapping") }}
        {%- endif -%}
        {%- for key in audience.keys() if key not in ['name', 'description', 'priority', 'condition', 'experiment'] -%}
            {{ exceptions.raise_compiler_error(where ~ ": unknown key '" ~ key ~ "' (expected name, description, priority, condition, experiment)") }}
        {%- endfor -%}
        {%- set name = audience.get('name') -%}
        {%- if name is not string or not modules.re.match('^[a-z][a-z0-9_]{0,62}$', name) -%}
            {{ exceptions.raise_compiler_error(where ~ ": name must be lower snake case (a-z, 0-9, _), got " ~ name) }}
        {%- endif -%}
        {%- if name in seen -%}
            {{ exceptions.raise_compiler_error("audience '" ~ name ~ "' is declared twice") }}
        {%- endif -%}
        {%- do seen.append(name) -%}
        {%- if audience.get('description') is not string or audience['description'] | trim | length == 0 -%}
            {{ exceptions.raise_compiler_error("audience '" ~ name ~ "': a description is required") }}
        {%- endif -%}
        {%- set priority = audience.get('priority') -%}
        {%- if priority is boolean or priority is not integer -%}
            {{ exceptions.raise_compiler_error("audience '" ~ name ~ "': priority must be an integer, got " ~ priority) }}
        {%- endif -%}
        {%- if 'condition' not in audience -%}
            {{ exceptions.raise_compiler_error("audience '" ~ name ~ "': a condition is required") }}
        {%- endif -%}
        {%- set predicate = segmint.compile_audience_condition(audience['condition'], columns, name) -%}
        {%- do selects.append(
            "select customer_id, " ~ segmint.audience_literal(name, name) ~ " as audience_name, "
            ~ segmint.audience_literal(audience['description'] | trim, name) ~ " as audience_description, "
            ~ priority ~ " as priority from " ~ relation ~ " where " ~ predicate
        ) -%}
    {%- endfor -%}
    {{ selects | join('\nunion all\n') }}
{%- endmacro -%}
