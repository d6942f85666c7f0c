-- Every source record with its customer. A customer's id comes from its anchor record, the
-- earliest-seen record of the component that carries a person-level identifier (email,
-- phone, shop account) or comes from a CRM: new records joining a customer do not rename
-- it, and a full rebuild gives the same ids. Components of anonymous device records only
-- are visitors, not customers (customer_id null).
with

records as (

    select * from {{ ref('int_identity__matching_records') }}

),

components as (

    select
        substr(node_id, 5) as record_id,
        component_id
    from {{ ref('int_identity__components') }}
    where node_id like 'rec:%'

),

deterministic as (

    select * from {{ ref('int_identity__deterministic_components') }}

),

identifiers as (

    select * from {{ ref('int_identity__usable_identifiers') }}

),

matches as (

    select * from {{ ref('int_identity__probabilistic_matches') }}

),

known_records as (

    select distinct record_id
    from identifiers
    where identifier_type in ('email', 'phone', 'shop_account')
    union
    select record_id from records
    where source_table = 'crm_contacts'

),

placed as (

    select
        records.record_id,
        records.source_table,
        records.source_record_id,
        records.first_seen_at,
        components.component_id,
        deterministic.component_id as deterministic_component_id,
        known_records.record_id is not null as is_known
    from records
    inner join components on records.record_id = components.record_id
    inner join deterministic on records.record_id = deterministic.record_id
    left join known_records on records.record_id = known_records.record_id

),

anchors as (

    select
        component_id,
        record_id as anchor_record_id,
        deterministic_component_id as anchor_deterministic_component_id
    from placed
    where is_known
    qualify row_number() over (
        partition by component_id order by first_seen_at, record_id
    ) = 1

),

match_ends as (

    select
        record_id_l as record_id,
        match_probability
    from matches
    union all
    select
        record_id_r as record_id,
        match_probability
    from matches

),

match_probabilities as (

    select
        deterministic.component_id as deterministic_component_id,
        max(match_ends.match_probability) as match_probability
    from match_ends
    inner join deterministic on match_ends.record_id = deterministic.record_id
    group by deterministic.component_id

),

final as (

    select
        placed.record_id,
        placed.source_table,
        placed.source_record_id,
        case
            when anchors.anchor_record_id is not null
                then 'cus_' || substr({{ dbt.hash('anchors.anchor_record_id') }}, 1, 16)
        end as customer_id,
        anchors.anchor_record_id,
        placed.component_id,
        case
            when anchors.anchor_record_id is null then null
            when placed.deterministic_component_id = anchors.anchor_deterministic_component_id
                then 'deterministic'
            else 'probabilistic'
        end as match_type,
        case
            when anchors.anchor_record_id is null then null
            when placed.deterministic_component_id = anchors.anchor_deterministic_component_id
                then 1.0
            else match_probabilities.match_probability
        end as match_probability
    from placed
    left join anchors on placed.component_id = anchors.component_id
    left join match_probabilities
        on placed.deterministic_component_id = match_probabilities.deterministic_component_id

)

select * from final
