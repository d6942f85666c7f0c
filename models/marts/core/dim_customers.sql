-- One row per customer: the golden record. Each attribute survives by the same rule:
-- the value from the most trusted source system (seed identity_source_priority), then the
-- value seen on most records, then the most recently seen, then the smallest value.
-- Identifiers excluded as shared (info@ mailboxes, placeholder phones) never survive.
-- An erased customer keeps its row and id, flagged, with every attribute emptied.
{%- set attributes = ['email_hash', 'phone_hash', 'country_code', 'city', 'date_of_birth'] %}

with

record_customers as (

    select * from {{ ref('int_identity__record_customers') }}
    where customer_id is not null

),

records as (

    select * from {{ ref('int_identity__records') }}

),

priorities as (

    select * from {{ ref('identity_source_priority') }}

),

usable as (

    select * from {{ ref('int_identity__record_usable_keys') }}

),

consent_events as (

    select * from {{ ref('stg_privacy__consent_events') }}

),

-- Requests not yet carried out, and the email hashes of those carried out (their rows are
-- deleted before dbt runs; a person whose records arrive later is still flagged).
erasure_requests as (

    select
        email_hash,
        requested_at
    from {{ ref('stg_privacy__erasure_requests') }}
    union all
    select
        email_hash,
        suppressed_at as requested_at
    from {{ ref('stg_privacy__suppressed_emails') }}

),

customer_records as (

    select
        record_customers.customer_id,
        records.record_id,
        records.source_table,
        records.source_system,
        records.first_seen_at,
        records.last_seen_at,
        usable.email_hash,
        usable.phone_hash,
        records.country_code,
        records.city,
        records.date_of_birth,
        coalesce(priorities.priority, 99) as source_priority
    from record_customers
    inner join records on record_customers.record_id = records.record_id
    left join priorities on records.source_system = priorities.source_system
    left join usable on records.record_id = usable.record_id

),
{%- for attribute in attributes %}

    survivor_{{ attribute }} as (

        select
            customer_id,
            {{ attribute }}
        from (
            select
                customer_id,
                {{ attribute }},
                min(source_priority) as best_priority,
                count(*) as frequency,
                max(last_seen_at) as latest_seen_at
            from customer_records
            where {{ attribute }} is not null
            group by customer_id, {{ attribute }}
        ) as candidates
        qualify row_number() over (
            partition by customer_id
            order by best_priority asc, frequency desc, latest_seen_at desc, {{ attribute }} asc
        ) = 1

    ),
{%- endfor %}

summary as (

    select
        customer_id,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        cast(count(*) as bigint) as source_record_count,
        cast(sum(case when source_table = 'crm_contacts' then 1 else 0 end) as bigint)
            as crm_record_count,
        cast(sum(case when source_table = 'orders' then 1 else 0 end) as bigint)
            as order_record_count
    from customer_records
    group by customer_id

),

customer_emails as (

    select distinct
        customer_id,
        email_hash
    from customer_records
    where email_hash is not null

),

latest_consent as (

    select
        customer_emails.customer_id,
        consent_events.consent_purpose,
        consent_events.is_granted
    from customer_emails
    inner join consent_events on customer_emails.email_hash = consent_events.email_hash
    qualify row_number() over (
        partition by customer_emails.customer_id, consent_events.consent_purpose
        order by consent_events.recorded_at desc, consent_events.consent_event_id desc
    ) = 1

),

consent_flags as (

    select
        customer_id,
        {%- for purpose in segmint.consent_purposes() %}
            coalesce(max(case when consent_purpose = '{{ purpose }}' then is_granted end), false)
                as has_{{ purpose }}_consent{% if not loop.last %},{% endif %}
        {%- endfor %}
    from latest_consent
    group by customer_id

),

erasures as (

    select
        customer_emails.customer_id,
        min(erasure_requests.requested_at) as erased_at
    from customer_emails
    inner join erasure_requests on customer_emails.email_hash = erasure_requests.email_hash
    group by customer_emails.customer_id

),

final as (

    select
        summary.customer_id,
        case when erasures.customer_id is null then survivor_email_hash.email_hash end
            as email_hash,
        case when erasures.customer_id is null then survivor_phone_hash.phone_hash end
            as phone_hash,
        case when erasures.customer_id is null then survivor_country_code.country_code end
            as country_code,
        case when erasures.customer_id is null then survivor_city.city end as city,
        case
            when erasures.customer_id is null
                then cast(extract(year from survivor_date_of_birth.date_of_birth) as integer)
        end as birth_year,
        summary.first_seen_at,
        summary.last_seen_at,
        summary.source_record_count,
        summary.crm_record_count,
        summary.order_record_count,
        {%- for purpose in segmint.consent_purposes() %}
            coalesce(consent_flags.has_{{ purpose }}_consent, false) and erasures.customer_id is null
                as has_{{ purpose }}_consent,
        {%- endfor %}
        erasures.customer_id is not null as is_erased,
        erasures.erased_at
    from
        summary
    {%- for attribute in attributes %}
    left join survivor_{{ attribute }} on summary.customer_id = survivor_{{ attribute }}.customer_id
    {%- endfor %}
    left join consent_flags on summary.customer_id = consent_flags.customer_id
    left join erasures on summary.customer_id = erasures.customer_id

)

select * from final
