-- One row per customer and segment membership: the RFM segment (buyers), every rule-based
-- audience, the lifecycle stage, and the cluster the clustering asset assigned. Erased
-- customers have none. `member_since` is the as_of_date of the run in which the membership
-- began: it carries over from the previous build of this table while the membership lasts
-- (a full refresh starts it afresh; the snapshot and segment_membership_history keep the
-- durable record).
{%- set previous = adapter.get_relation(this.database, this.schema, this.identifier) if execute else none %}

with

as_of as (

    select * from {{ ref('int_segments__as_of') }}

),

rfm as (

    select * from {{ ref('customer_rfm') }}
    where not is_prospect

),

audiences as (

    select * from {{ ref('customer_audiences') }}

),

behavior as (

    select * from {{ ref('customer_behavior') }}

),

clusters as (

    select * from {{ ref('stg_ml__customer_clusters') }}

),

memberships as (

    select
        customer_id,
        'rfm' as segment_type,
        rfm_segment as segment_name
    from rfm
    union all
    select
        customer_id,
        'rule' as segment_type,
        audience_name as segment_name
    from audiences
    union all
    select
        customer_id,
        'lifecycle' as segment_type,
        lifecycle_stage as segment_name
    from behavior
    union all
    select
        clusters.customer_id,
        'cluster' as segment_type,
        clusters.segment_name
    from clusters
    -- Customers erased (or gone) since the clustering run get no membership.
    inner join behavior on clusters.customer_id = behavior.customer_id

),

keyed as (

    select
        'mbr_' || substr({{ dbt.hash("customer_id || '|' || segment_type || '|' || segment_name") }}, 1, 16)
            as membership_id,
        customer_id,
        segment_type,
        segment_name,
        segment_type || '_'
        || trim({{ segmint.regexp_replace_all("lower(segment_name)", "[^a-z0-9]+", "_") }}, '_')
            as segment_key
    from memberships

),

{% if previous is not none %}

    previous as (

        select
            membership_id,
            member_since
        from {{ this }}

    ),

{% endif %}

final as (

    select
        keyed.membership_id,
        keyed.customer_id,
        keyed.segment_type,
        keyed.segment_name,
        keyed.segment_key,
        {% if previous is not none -%}
            least(coalesce(previous.member_since, as_of.as_of_date), as_of.as_of_date)
        {%- else -%}
            as_of.as_of_date
        {%- endif %} as member_since,
        as_of.as_of_date
    from keyed
    cross join as_of
    {% if previous is not none -%}
        left join previous on keyed.membership_id = previous.membership_id
    {%- endif %}

)

select * from final
