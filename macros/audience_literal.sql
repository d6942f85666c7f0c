{#- A YAML scalar as a SQL literal: numbers as they are, booleans as true/false, strings
    single-quoted with quotes doubled. Strings with a backslash or a control character are
    refused (their meaning differs between warehouses), as is anything else. -#}
{%- macro audience_literal(value, where) -%}
    {%- if value is boolean -%}
        {{ 'true' if value else 'false' }}
    {%- elif value is number -%}
        {{ value }}
    {%- elif value is string -%}
        {%- if modules.re.search('[\\\\\\x00-\\x1f]', value) -%}
            {{ exceptions.raise_compiler_error(where ~ ": string value " ~ value ~ " contains a backslash or control character") }}
        {%- endif -%}
        '{{ value | replace("'", "''") }}'
    {%- else -%}
        {{ exceptions.raise_compiler_error(where ~ ": value " ~ value ~ " is not a number, string or boolean") }}
    {%- endif -%}
{%- endmacro -%}
