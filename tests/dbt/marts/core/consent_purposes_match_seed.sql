-- The consent purposes compiled into SQL (macro consent_purposes) are exactly those of the
-- seed consent_purposes, the one list Python and the quality gates read: a purpose added to
-- the seed needs its has_<purpose>_consent column in dim_customers.
with

seed as (

    select consent_purpose from {{ ref('consent_purposes') }}

),

compiled as (

    {%- for purpose in segmint.consent_purposes() %}
        select '{{ purpose }}' as consent_purpose
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

final as (

    select consent_purpose, 'in the seed, not in the macro' as problem
    from seed
    where consent_purpose not in (select compiled.consent_purpose from compiled)
    union all
    select consent_purpose, 'in the macro, not in the seed' as problem
    from compiled
    where consent_purpose not in (select seed.consent_purpose from seed)

)

select * from final
