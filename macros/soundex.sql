{% macro soundex(expression) -%}
    {#- American Soundex of a name (letter and three digits: 'r163' for Robert and Rupert),
        null when it has no letter. Portable SQL, so DuckDB and Snowflake give the same key
        (Snowflake's own SOUNDEX treats h and w differently). Every letter gets its code
        (vowels and y: 0); h and w are skipped after the first letter, so they do not split
        a run; runs of one code collapse; the first letter's code and the zeros go; three
        digits remain, padded with zeros. -#}
    {%- set letters = segmint.regexp_replace_all('lower(' ~ expression ~ ')', '[^a-z]', '') %}
    {%- set first = "translate(substr(" ~ letters ~ ", 1, 1), 'abcdefghijklmnopqrstuvwxyz', '01230120022455012623010202')" %}
    {%- set rest = "translate(substr(" ~ letters ~ ", 2), 'abcdefgijklmnopqrstuvxyzhw', '012301202245501262301202')" %}
    {%- set coded = first ~ " || " ~ rest %}
    {%- for digit in range(7) %}
        {%- set coded = segmint.regexp_replace_all(coded, digit ~ '+', digit) %}
    {%- endfor %}
    case
        when {{ letters }} <> ''
            then substr({{ letters }}, 1, 1)
            || rpad(replace(substr({{ coded }}, 2), '0', ''), 3, '0')
    end
{%- endmacro %}
