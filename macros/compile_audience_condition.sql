{#-
    Compiles one audience condition (parsed YAML) to a SQL boolean expression over the
    columns named in `columns`. Every column, operator and value is checked: an unknown
    column or operator, a value of the wrong shape, or a string that could escape its quotes
    stops compilation with the audience and the path of the offending node in the message.

    Grammar (one mapping per node):
      {all: [cond, ...]}  {any: [cond, ...]}  {not: cond}
      {column: name, op: OP, value: V}
      {window: {metric: name, days: N}, op: OP, value: V}  -> column <metric>_<N>d
    OP: = != < <= > >= in not_in between is_null is_not_null is_true is_false
    V: a number, a string, true/false, a list (in, not_in; between takes [low, high]),
       or {var: name} for a dbt var holding such a value.
-#}
{%- macro compile_audience_condition(condition, columns, audience, path='condition') -%}
    {%- set comparisons = {'=': '=', '!=': '<>', '<': '<', '<=': '<=', '>': '>', '>=': '>='} -%}
    {%- set unary = {'is_null': 'is null', 'is_not_null': 'is not null', 'is_true': '= true', 'is_false': '= false'} -%}
    {%- set where = "audience '" ~ audience ~ "', " ~ path -%}
    {%- if condition is not mapping -%}
        {{ exceptions.raise_compiler_error(where ~ ": a condition must be a mapping, got " ~ condition) }}
    {%- endif -%}
    {%- set keys = condition.keys() | list | sort -%}
    {%- if 'all' in condition or 'any' in condition -%}
        {%- set kind = 'all' if 'all' in condition else 'any' -%}
        {%- set parts = condition[kind] -%}
        {%- if keys | length != 1 or parts is string or parts is not sequence or parts | length == 0 -%}
            {{ exceptions.raise_compiler_error(where ~ ": '" ~ kind ~ "' takes a non-empty list of conditions and nothing beside it") }}
        {%- endif -%}
        {%- set compiled = [] -%}
        {%- for part in parts -%}
            {%- do compiled.append(segmint.compile_audience_condition(part, columns, audience, path ~ '.' ~ kind ~ '[' ~ loop.index0 ~ ']')) -%}
        {%- endfor -%}
        ({{ compiled | join(' and ' if kind == 'all' else ' or ') }})
    {%- elif 'not' in condition -%}
        {%- if keys | length != 1 -%}
            {{ exceptions.raise_compiler_error(where ~ ": 'not' takes one condition and nothing beside it") }}
        {%- endif -%}
        (not {{ segmint.compile_audience_condition(condition['not'], columns, audience, path ~ '.not') }})
    {%- else -%}
        {%- if 'window' in condition -%}
            {%- set window = condition['window'] -%}
            {%- if window is not mapping or (window.keys() | list | sort) != ['days', 'metric'] or window['days'] is not number or window['days'] is boolean -%}
                {{ exceptions.raise_compiler_error(where ~ ": 'window' takes {metric: name, days: N}") }}
            {%- endif -%}
            {%- set column = window['metric'] ~ '_' ~ window['days'] ~ 'd' -%}
            {%- set allowed_keys = ['op', 'value', 'window'] -%}
        {%- elif 'column' in condition -%}
            {%- set column = condition['column'] -%}
            {%- set allowed_keys = ['column', 'op', 'value'] -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error(where ~ ": expected one of all, any, not, column, window; got keys " ~ keys) }}
        {%- endif -%}
        {%- for key in keys if key not in allowed_keys -%}
            {{ exceptions.raise_compiler_error(where ~ ": unknown key '" ~ key ~ "'") }}
        {%- endfor -%}
        {%- if column is not string or column not in columns -%}
            {{ exceptions.raise_compiler_error(where ~ ": unknown column '" ~ column ~ "'; known columns: " ~ (columns | sort | join(', '))) }}
        {%- endif -%}
        {%- set op = condition.get('op') -%}
        {%- set value = condition.get('value') -%}
        {%- if value is mapping -%}
            {%- if (value.keys() | list) != ['var'] -%}
                {{ exceptions.raise_compiler_error(where ~ ": a mapping value must be {var: name}") }}
            {%- endif -%}
            {%- set value = var(value['var']) -%}
        {%- endif -%}
        {%- if op in unary -%}
            {%- if 'value' in condition -%}
                {{ exceptions.raise_compiler_error(where ~ ": operator '" ~ op ~ "' takes no value") }}
            {%- endif -%}
            {{ column }} {{ unary[op] }}
        {%- elif op in comparisons -%}
            {{ column }} {{ comparisons[op] }} {{ segmint.audience_literal(value, where) }}
        {%- elif op in ['in', 'not_in'] -%}
            {%- if value is string or value is not sequence or value | length == 0 -%}
                {{ exceptions.raise_compiler_error(where ~ ": operator '" ~ op ~ "' takes a non-empty list") }}
            {%- endif -%}
            {%- set literals = [] -%}
            {%- for item in value -%}
                {%- do literals.append(segmint.audience_literal(item, where)) -%}
            {%- endfor -%}
            {{ column }} {{ 'in' if op == 'in' else 'not in' }} ({{ literals | join(', ') }})
        {%- elif op == 'between' -%}
            {%- if value is string or value is not sequence or value | length != 2 -%}
                {{ exceptions.raise_compiler_error(where ~ ": operator 'between' takes [low, high]") }}
            {%- endif -%}
            {{ column }} between {{ segmint.audience_literal(value[0], where) }} and {{ segmint.audience_literal(value[1], where) }}
        {%- else -%}
            {{ exceptions.raise_compiler_error(where ~ ": unknown operator '" ~ op ~ "'; known operators: " ~ ((comparisons.keys() | list) + ['in', 'not_in', 'between'] + (unary.keys() | list)) | join(', ')) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro -%}
