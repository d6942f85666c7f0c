{% macro normalize_phone(phone, dialing_code) -%}
    {#- Canonical digits with the country calling code and no prefix: +44 20 7946 0123,
        0044 20 7946 0123 and (GB) 020 7946 0123 all give 442079460123. A national number
        of a contact whose country is unknown cannot be placed and gives null. -#}
    {%- set cleaned = segmint.regexp_replace_all("trim(" ~ phone ~ ")", "[^0-9+]", "") -%}
    {%- set digits = segmint.regexp_replace_all(cleaned, "[^0-9]", "") -%}
    case
        when length({{ digits }}) < 7 then null
        when {{ cleaned }} like '+%' then {{ digits }}
        when {{ digits }} like '00%' then substr({{ digits }}, 3)
        when {{ dialing_code }} is null then null
        when {{ dialing_code }} = '1' and length({{ digits }}) = 11 and {{ digits }} like '1%'
            then {{ digits }}
        when {{ dialing_code }} = '1' then '1' || {{ digits }}
        when {{ digits }} like '0%' then {{ dialing_code }} || substr({{ digits }}, 2)
        else {{ dialing_code }} || {{ digits }}
    end
{%- endmacro %}
