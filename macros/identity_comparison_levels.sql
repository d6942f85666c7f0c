{% macro identity_comparison_levels(l, r) -%}
    {#- Comparison vector of two contact records for Fellegi-Sunter scoring. Each column is
        a level: higher is closer agreement, 0 disagreement, -1 a missing value on either
        side (neutral: it neither supports nor opposes a match). `l` and `r` are aliases of
        relations with columns first_name_key, first_name_canonical, last_name_key,
        date_of_birth, city_key, postcode_key, street_key, email_local, phone_hash. The
        comparisons and their level counts are listed in identity_comparisons. -#}
    {%- set jw = segmint.jaro_winkler %}
    {%- set swapped -%}
        ({{ jw(l ~ '.first_name_key', r ~ '.last_name_key') }} >= 0.92
        and {{ jw(l ~ '.last_name_key', r ~ '.first_name_key') }} >= 0.92)
    {%- endset %}
    case
        when {{ l }}.first_name_key is null or {{ r }}.first_name_key is null then -1
        when {{ l }}.first_name_key = {{ r }}.first_name_key then 3
        when {{ l }}.first_name_canonical = {{ r }}.first_name_canonical
            or {{ jw(l ~ '.first_name_key', r ~ '.first_name_key') }} >= 0.92
            or {{ swapped }}
            then 2
        when {{ jw(l ~ '.first_name_key', r ~ '.first_name_key') }} >= 0.80 then 1
        else 0
    end as gamma_first_name,
    case
        when {{ l }}.last_name_key is null or {{ r }}.last_name_key is null then -1
        when {{ l }}.last_name_key = {{ r }}.last_name_key then 3
        when {{ jw(l ~ '.last_name_key', r ~ '.last_name_key') }} >= 0.92 or {{ swapped }} then 2
        when {{ segmint.edit_distance(l ~ '.last_name_key', r ~ '.last_name_key') }} <= 2 then 1
        else 0
    end as gamma_last_name,
    case
        when {{ l }}.date_of_birth is null or {{ r }}.date_of_birth is null then -1
        when {{ l }}.date_of_birth = {{ r }}.date_of_birth then 3
        when extract(year from {{ l }}.date_of_birth) = extract(year from {{ r }}.date_of_birth)
            and (
                extract(month from {{ l }}.date_of_birth) = extract(month from {{ r }}.date_of_birth)
                or (
                    extract(month from {{ l }}.date_of_birth) = extract(day from {{ r }}.date_of_birth)
                    and extract(day from {{ l }}.date_of_birth) = extract(month from {{ r }}.date_of_birth)
                )
            )
            then 2
        when extract(year from {{ l }}.date_of_birth) = extract(year from {{ r }}.date_of_birth)
            or (
                extract(month from {{ l }}.date_of_birth) = extract(month from {{ r }}.date_of_birth)
                and extract(day from {{ l }}.date_of_birth) = extract(day from {{ r }}.date_of_birth)
            )
            then 1
        else 0
    end as gamma_date_of_birth,
    case
        when {{ l }}.city_key is null or {{ r }}.city_key is null then -1
        when {{ l }}.city_key = {{ r }}.city_key then 2
        when {{ jw(l ~ '.city_key', r ~ '.city_key') }} >= 0.88 then 1
        else 0
    end as gamma_city,
    case
        when {{ l }}.postcode_key is null or {{ r }}.postcode_key is null then -1
        when {{ l }}.postcode_key = {{ r }}.postcode_key then 2
        when {{ segmint.edit_distance(l ~ '.postcode_key', r ~ '.postcode_key') }} <= 1 then 1
        else 0
    end as gamma_postcode,
    case
        when {{ l }}.street_key is null or {{ r }}.street_key is null then -1
        when {{ l }}.street_key = {{ r }}.street_key then 2
        when {{ jw(l ~ '.street_key', r ~ '.street_key') }} >= 0.88 then 1
        else 0
    end as gamma_street,
    case
        when {{ l }}.email_local is null or {{ r }}.email_local is null then -1
        when {{ l }}.email_local = {{ r }}.email_local then 1
        else 0
    end as gamma_email,
    case
        when {{ l }}.phone_hash is null or {{ r }}.phone_hash is null then -1
        when {{ l }}.phone_hash = {{ r }}.phone_hash then 1
        else 0
    end as gamma_phone
{%- endmacro %}
