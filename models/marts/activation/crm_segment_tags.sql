-- One row per destination and customer the destination may receive: the CRM key and the
-- desired set of segmint tags. Consent by construction, per address: a customer appears for
-- a destination only if not erased, their latest consent event for the destination's
-- purpose over all their addresses is a grant (dim_customers), and the key sent is an
-- address whose own latest event for the purpose is a grant. The key is the newest such
-- contact in the destination's own CRM, else (for destinations that create contacts) the
-- first such email of the customer's own (not shared) emails.
-- Holdout members of an experiment's audience do not get its tag; members of the global
-- holdout get no tag at all, and so are not sent (experiment_assignments).
-- Destinations are declared in this model's YAML (_destinations.yml, config.meta.destinations),
-- the same file the sync reads; var crm_destinations_override replaces the list (tests).
{%- set declared = (config.get('meta') or {}).get('destinations') %}
{%- set destinations = var('crm_destinations_override', none) or declared %}
{%- set purposes = segmint.consent_purposes() %}
{%- set segment_types = ['rfm', 'rule', 'lifecycle', 'cluster'] %}
{#- The YAML config reaches the model only at execution; parsing sees an empty list. #}
{%- if not execute %}{% set destinations = [] %}{% endif %}
{%- if execute and (destinations is string or destinations is not sequence or destinations | length == 0) %}
    {{ exceptions.raise_compiler_error("crm_segment_tags: config.meta.destinations must be a non-empty list") }}
{%- endif %}
{%- for d in destinations %}
    {%- set where = "destination " ~ loop.index ~ " (" ~ d.get('name') ~ ")" %}
    {%- if not modules.re.fullmatch('[a-z][a-z0-9_]*', d.get('name') or '') %}
        {{ exceptions.raise_compiler_error(where ~ ": name must be lower snake case") }}
    {%- endif %}
    {%- if d.get('consent_purpose') not in purposes %}
        {{ exceptions.raise_compiler_error(where ~ ": consent_purpose must be one of " ~ purposes | join(', ')) }}
    {%- endif %}
    {%- if d.get('crm_system') not in [none, 'hubspot', 'salesforce'] %}
        {{ exceptions.raise_compiler_error(where ~ ": crm_system must be hubspot, salesforce or absent") }}
    {%- endif %}
    {%- if not modules.re.fullmatch('[a-z][a-z0-9_]*', d.get('tag_prefix', 'segmint_')) %}
        {{ exceptions.raise_compiler_error(where ~ ": tag_prefix must be lower snake case") }}
    {%- endif %}
    {%- for t in d.get('segment_types', segment_types) %}
        {%- if t not in segment_types %}
            {{ exceptions.raise_compiler_error(where ~ ": unknown segment type '" ~ t ~ "'") }}
        {%- endif %}
    {%- endfor %}
    {%- set properties = d.get('properties') or {} %}
    {%- if properties is not mapping %}
        {{ exceptions.raise_compiler_error(where ~ ": properties must map CRM property names to prediction columns") }}
    {%- endif %}
    {%- for name, column in properties.items() %}
        {%- if not modules.re.fullmatch('[A-Za-z][A-Za-z0-9_]*', name) %}
            {{ exceptions.raise_compiler_error(where ~ ": property name '" ~ name ~ "' must be letters, digits and _") }}
        {%- endif %}
        {%- if column not in segmint.prediction_audience_columns() %}
            {{ exceptions.raise_compiler_error(where ~ ": property " ~ name ~ ": '" ~ column ~ "' is not a prediction column (" ~ segmint.prediction_audience_columns() | join(', ') ~ ")") }}
        {%- endif %}
    {%- endfor %}
{%- endfor %}
{#- Per destination with properties: a JSON object of its prediction columns, names sorted. #}
{%- set properties_sql = [] %}
{%- for d in destinations if d.get('properties') %}
    {%- set parts = [] %}
    {%- for name, column in d.properties.items() | list | sort %}
        {%- set value = "coalesce(cast(round(predictions." ~ column ~ ", 2) as varchar), 'null')" %}
        {%- do parts.append("'\"" ~ name ~ "\":' || " ~ value) %}
    {%- endfor %}
    {%- set json = "'{' || " ~ parts | join(" || ',' || ") ~ " || '}'" %}
    {%- do properties_sql.append("when '" ~ d.name ~ "' then " ~ json) %}
{%- endfor %}

with

customers as (

    select * from {{ ref('dim_customers') }}
    where not is_erased

),

all_segments as (

    select * from {{ ref('customer_segments') }}

),

held_out as (

    -- Experiments (docs/experiments.md): holdout members of an audience under test, and
    -- everyone in the global holdout (no audience), are never activated.
    select
        customer_id,
        audience_name
    from {{ ref('experiment_assignments') }}
    where arm = 'holdout'

),

held_out_memberships as (

    select distinct all_segments.membership_id
    from all_segments
    inner join held_out
        on
            all_segments.customer_id = held_out.customer_id
            and (
                held_out.audience_name is null
                or (
                    all_segments.segment_type = 'rule'
                    and all_segments.segment_name = held_out.audience_name
                )
            )

),

segments as (

    select all_segments.*
    from all_segments
    left join held_out_memberships
        on all_segments.membership_id = held_out_memberships.membership_id
    where held_out_memberships.membership_id is null

),

identities as (

    select distinct
        customer_id,
        source_record_id
    from {{ ref('dim_customer_identities') }}
    where source_table = 'crm_contacts'

),

customer_emails as (

    select distinct
        customer_id,
        identifier_value as email_hash
    from {{ ref('dim_customer_identities') }}
    where identifier_type = 'email' and not is_excluded and customer_id is not null

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

consent_events as (

    select * from {{ ref('stg_privacy__consent_events') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

predictions as (

    select * from {{ ref('stg_ml__customer_predictions') }}

),

destinations as (

    {% for d in destinations -%}
        select
            '{{ d.name }}' as destination,
            '{{ d.consent_purpose }}' as consent_purpose,
            {% if d.get('crm_system') -%}
                '{{ d.crm_system }}'
            {%- else -%}
                cast(null as varchar)
            {%- endif %} as crm_system,
            {{ 'true' if d.get('create_missing', true) else 'false' }} as creates_missing,
            '{{ d.get('tag_prefix', 'segmint_') }}' as tag_prefix
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

destination_segment_types as (

    {% for d in destinations -%}
        {%- set outer = loop -%}
        {%- for t in d.get('segment_types', segment_types) -%}
            select
                '{{ d.name }}' as destination,
                '{{ t }}' as segment_type
            {% if not (outer.last and loop.last) %}union all{% endif %}
        {% endfor %}
    {%- endfor %}

),

emails as (

    -- The plain email behind each email hash (CRM contacts first, then orders).
    select
        email_hash,
        min(email) as email
    from (
        select
            email_hash,
            email
        from contacts
        where email is not null
        union all
        select
            email_hash,
            email
        from orders
        where email is not null
    ) as known
    group by email_hash

),

latest_address_consent as (

    -- Consent per address: each email's own latest event per purpose.
    select
        email_hash,
        consent_purpose,
        is_granted
    from consent_events
    qualify row_number() over (
        partition by email_hash, consent_purpose
        order by recorded_at desc, consent_event_id desc
    ) = 1

),

granted_addresses as (

    select
        email_hash,
        consent_purpose
    from latest_address_consent
    where is_granted

),

granted_purposes as (

    -- One row per customer and purpose their latest consent event (over all their
    -- addresses) grants: a revocation on any address, after the grants, stops the customer.
    {% for purpose in purposes -%}
        select
            customer_id,
            '{{ purpose }}' as consent_purpose
        from customers
        where has_{{ purpose }}_consent
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

consented as (

    select
        destinations.destination,
        destinations.consent_purpose,
        destinations.crm_system,
        destinations.creates_missing,
        granted_purposes.customer_id
    from granted_purposes
    inner join destinations on granted_purposes.consent_purpose = destinations.consent_purpose

),

crm_candidates as (

    -- The customer's contacts in the destination's CRM whose own email grants the purpose,
    -- newest first.
    select
        consented.destination,
        consented.customer_id,
        contacts.source_contact_id,
        contacts.email,
        row_number() over (
            partition by consented.destination, consented.customer_id
            order by contacts.updated_at desc, contacts.source_contact_id asc
        ) as recency_rank
    from consented
    inner join identities on consented.customer_id = identities.customer_id
    inner join contacts
        on
            identities.source_record_id = contacts.contact_id
            and consented.crm_system = contacts.source_system
    inner join granted_addresses
        on
            contacts.email_hash = granted_addresses.email_hash
            and consented.consent_purpose = granted_addresses.consent_purpose

),

email_candidates as (

    -- The customer's own (not shared) emails that grant the purpose, for destinations that
    -- create contacts.
    select
        consented.destination,
        consented.customer_id,
        emails.email,
        row_number() over (
            partition by consented.destination, consented.customer_id
            order by emails.email asc
        ) as email_rank
    from consented
    inner join customer_emails on consented.customer_id = customer_emails.customer_id
    inner join granted_addresses
        on
            customer_emails.email_hash = granted_addresses.email_hash
            and consented.consent_purpose = granted_addresses.consent_purpose
    inner join emails on customer_emails.email_hash = emails.email_hash
    where consented.creates_missing

),

keyed as (

    select
        consented.destination,
        consented.consent_purpose,
        consented.customer_id,
        crm_candidates.source_contact_id as crm_record_id,
        coalesce(crm_candidates.email, email_candidates.email) as email,
        case when crm_candidates.source_contact_id is not null then 'crm_id' else 'email' end
            as key_type,
        coalesce(crm_candidates.source_contact_id, email_candidates.email) as record_key
    from consented
    left join crm_candidates
        on
            consented.destination = crm_candidates.destination
            and consented.customer_id = crm_candidates.customer_id
            and crm_candidates.recency_rank = 1
    left join email_candidates
        on
            consented.destination = email_candidates.destination
            and consented.customer_id = email_candidates.customer_id
            and email_candidates.email_rank = 1
    where crm_candidates.source_contact_id is not null or email_candidates.email is not null

),

tags as (

    -- Only for the customers a destination has a key for (about half of all pairs of
    -- destination and customer at 100k customers): the rest are never sent.
    select
        destinations.destination,
        segments.customer_id,
        {{ segmint.string_agg_sorted("destinations.tag_prefix || segments.segment_key", ";") }}
            as tags,
        count(*) as tag_count
    from segments
    inner join destination_segment_types
        on segments.segment_type = destination_segment_types.segment_type
    inner join destinations on destination_segment_types.destination = destinations.destination
    inner join keyed
        on
            destinations.destination = keyed.destination
            and segments.customer_id = keyed.customer_id
    group by destinations.destination, segments.customer_id

),

properties as (

    -- Per destination that declares `properties`: the chosen prediction columns as a JSON
    -- object (names sorted, values rounded to 2 decimals, null when not scored).
    select
        keyed.destination,
        keyed.customer_id,
        {% if properties_sql -%}
            case keyed.destination {{ properties_sql | join(' ') }} end
        {%- else -%}
            cast(null as varchar)
        {%- endif %} as properties
    from keyed
    left join predictions on keyed.customer_id = predictions.customer_id

),

final as (

    select
        keyed.destination || ':' || keyed.record_key as destination_record_id,
        keyed.destination,
        keyed.customer_id,
        keyed.record_key,
        keyed.key_type,
        keyed.crm_record_id,
        keyed.email,
        keyed.consent_purpose,
        tags.tags,
        tags.tag_count,
        properties.properties,
        -- Destinations without properties keep the hash of the tags alone.
        {{ dbt.hash("tags.tags || coalesce('|' || properties.properties, '')") }} as tag_hash
    from keyed
    inner join tags
        on
            keyed.destination = tags.destination
            and keyed.customer_id = tags.customer_id
    inner join properties
        on
            keyed.destination = properties.destination
            and keyed.customer_id = properties.customer_id

)

select * from final
