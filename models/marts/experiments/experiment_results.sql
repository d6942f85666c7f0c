-- One row per experiment and window (days after entry): each arm's members whose window has
-- fully passed by as_of_date, their conversion (a completed order within the window),
-- orders and revenue per member (reporting currency), and the treatment's uplift over the
-- holdout with 95% confidence intervals and two-sided p-values; see docs/experiments.md.
-- - Conversion: absolute uplift with the unpooled (Wald) interval, relative uplift with the
--   delta-method interval, p-value of the pooled two-proportion z test.
-- - Revenue per member: Welch's unequal-variance comparison, normal approximation (valid
--   for the arm sizes it is read at, see required_holdout_members).
-- - required_holdout_members: holdout members needed to detect min_detectable_effect
--   (absolute conversion uplift) at 5% two-sided with 80% power, given the observed holdout
--   rate and the arms' ratio (Fleiss). is_readable marks rows that reached it: read an
--   experiment there, once (fixed horizon); stopping at the first significant look would
--   inflate false positives.
{%- set experiments = segmint.experiments() if execute else [] %}
{%- set z = 1.959963984540054 %}
{%- set z_power = 0.8416212335729143 %}
{%- set conversion_z = 'tested.conversion_uplift / tested.conversion_pooled_se' %}
{%- set revenue_z = 'tested.revenue_uplift / tested.revenue_uplift_se' %}

with

as_of as (

    select * from {{ ref('int_segments__as_of') }}

),

customers as (

    select * from {{ ref('dim_customers') }}
    where not is_erased

),

assignments as (

    -- Current customers only: ids merged away and erased customers drop out of both arms.
    select assignments.*
    from {{ ref('experiment_assignments') }} as assignments
    inner join customers on assignments.customer_id = customers.customer_id

),

orders as (

    select * from {{ ref('fct_orders') }}
    where is_completed and customer_id is not null

),

fx_rates as (

    select * from {{ ref('fx_rates') }}

),

windows as (

    {% for e in experiments -%}
        {%- for w in e.windows -%}
            select
                '{{ e.experiment_id }}' as experiment_id,
                {{ w }} as window_days,
                cast({{ e.min_detectable_effect }} as double) as min_detectable_effect
            union all
        {% endfor -%}
    {%- endfor -%}
    select
        cast(null as varchar) as experiment_id,
        cast(null as integer) as window_days,
        cast(null as double) as min_detectable_effect
    where 1 = 0

),

eligible as (

    select
        assignments.experiment_id,
        assignments.customer_id,
        assignments.arm,
        assignments.entry_date,
        windows.window_days,
        cast({{ dbt.dateadd('day', 'windows.window_days', 'assignments.entry_date') }} as date)
            as window_end_date
    from assignments
    inner join windows on assignments.experiment_id = windows.experiment_id
    cross join as_of
    where
        cast({{ dbt.dateadd('day', 'windows.window_days', 'assignments.entry_date') }} as date)
        <= as_of.as_of_date

),

outcomes as (

    select
        eligible.experiment_id,
        eligible.window_days,
        eligible.customer_id,
        eligible.arm,
        count(orders.order_id) as orders,
        coalesce(sum(cast(orders.total_amount as double) * fx_rates.rate_to_reporting), 0)
            as revenue
    from eligible
    left join orders
        on
            eligible.customer_id = orders.customer_id
            and eligible.entry_date < orders.order_date
            and eligible.window_end_date >= orders.order_date
    left join fx_rates on orders.currency_code = fx_rates.currency_code
    group by eligible.experiment_id, eligible.window_days, eligible.customer_id, eligible.arm

),

arms as (

    select
        experiment_id,
        window_days,
        arm,
        count(*) as members,
        sum(case when orders > 0 then 1 else 0 end) as conversions,
        avg(case when orders > 0 then 1.0 else 0.0 end) as conversion_rate,
        avg(cast(orders as double)) as orders_per_member,
        avg(revenue) as revenue_per_member,
        coalesce(var_samp(revenue), 0) as revenue_variance
    from outcomes
    group by experiment_id, window_days, arm

),

paired as (

    select
        windows.experiment_id,
        windows.window_days,
        windows.min_detectable_effect,
        coalesce(treated.members, 0) as treatment_members,
        coalesce(held.members, 0) as holdout_members,
        coalesce(treated.conversions, 0) as treatment_conversions,
        coalesce(held.conversions, 0) as holdout_conversions,
        treated.conversion_rate as treatment_conversion_rate,
        held.conversion_rate as holdout_conversion_rate,
        treated.orders_per_member as treatment_orders_per_member,
        held.orders_per_member as holdout_orders_per_member,
        treated.revenue_per_member as treatment_revenue_per_member,
        held.revenue_per_member as holdout_revenue_per_member,
        treated.revenue_variance as treatment_revenue_variance,
        held.revenue_variance as holdout_revenue_variance
    from windows
    left join arms as treated
        on
            windows.experiment_id = treated.experiment_id
            and windows.window_days = treated.window_days
            and treated.arm = 'treatment'
    left join arms as held
        on
            windows.experiment_id = held.experiment_id
            and windows.window_days = held.window_days
            and held.arm = 'holdout'

),

errors as (

    select
        *,
        treatment_conversion_rate - holdout_conversion_rate as conversion_uplift,
        sqrt(
            treatment_conversion_rate * (1 - treatment_conversion_rate) / treatment_members
            + holdout_conversion_rate * (1 - holdout_conversion_rate) / holdout_members
        ) as conversion_uplift_se,
        (treatment_conversions + holdout_conversions) * 1.0
        / (treatment_members + holdout_members) as pooled_rate,
        case
            when holdout_conversion_rate > 0
                then sqrt(
                    treatment_conversion_rate * (1 - treatment_conversion_rate) / treatment_members
                    / power(holdout_conversion_rate, 2)
                    + power(treatment_conversion_rate, 2)
                    * holdout_conversion_rate * (1 - holdout_conversion_rate) / holdout_members
                    / power(holdout_conversion_rate, 4)
                )
        end as relative_uplift_se,
        treatment_revenue_per_member - holdout_revenue_per_member as revenue_uplift,
        sqrt(
            treatment_revenue_variance / treatment_members
            + holdout_revenue_variance / holdout_members
        ) as revenue_uplift_se,
        cast(treatment_members as double) / nullif(holdout_members, 0) as arm_ratio
    from paired
    where treatment_members > 0 and holdout_members > 0

),

tested as (

    select
        *,
        sqrt(pooled_rate * (1 - pooled_rate) * (1.0 / treatment_members + 1.0 / holdout_members))
            as conversion_pooled_se
    from errors

),

planned as (

    -- Fleiss: holdout members n such that a treatment arm of ratio k * n detects p1 -> p2.
    select
        experiment_id,
        window_days,
        holdout_conversion_rate as p1,
        least(holdout_conversion_rate + min_detectable_effect, 0.999999) as p2,
        arm_ratio as k
    from errors

),

required as (

    select
        experiment_id,
        window_days,
        cast(ceil(power(
            {{ z }} * sqrt(((p1 + k * p2) / (1 + k)) * (1 - (p1 + k * p2) / (1 + k)) * (1 + 1 / k))
            + {{ z_power }} * sqrt(p1 * (1 - p1) + p2 * (1 - p2) / k),
            2
        ) / power(p2 - p1, 2)) as bigint) as required_holdout_members
    from planned

),

final as (

    select
        paired.experiment_id,
        paired.window_days,
        paired.treatment_members,
        paired.holdout_members,
        paired.treatment_conversions,
        paired.holdout_conversions,
        paired.treatment_conversion_rate,
        paired.holdout_conversion_rate,
        tested.conversion_uplift,
        tested.conversion_uplift - {{ z }} * tested.conversion_uplift_se as conversion_uplift_ci_low,
        tested.conversion_uplift + {{ z }} * tested.conversion_uplift_se as conversion_uplift_ci_high,
        case
            when tested.conversion_pooled_se > 0
                then {{ segmint.normal_two_sided_p(conversion_z) }}
        end as conversion_p_value,
        tested.conversion_uplift / nullif(tested.holdout_conversion_rate, 0)
            as relative_conversion_uplift,
        tested.conversion_uplift / nullif(tested.holdout_conversion_rate, 0)
        - {{ z }} * tested.relative_uplift_se as relative_conversion_uplift_ci_low,
        tested.conversion_uplift / nullif(tested.holdout_conversion_rate, 0)
        + {{ z }} * tested.relative_uplift_se as relative_conversion_uplift_ci_high,
        paired.treatment_orders_per_member,
        paired.holdout_orders_per_member,
        paired.treatment_revenue_per_member,
        paired.holdout_revenue_per_member,
        tested.revenue_uplift,
        tested.revenue_uplift - {{ z }} * tested.revenue_uplift_se as revenue_uplift_ci_low,
        tested.revenue_uplift + {{ z }} * tested.revenue_uplift_se as revenue_uplift_ci_high,
        case
            when tested.revenue_uplift_se > 0
                then {{ segmint.normal_two_sided_p(revenue_z) }}
        end as revenue_p_value,
        paired.min_detectable_effect,
        required.required_holdout_members,
        coalesce(paired.holdout_members >= required.required_holdout_members, false)
            as is_readable,
        as_of.as_of_date
    from paired
    left join tested
        on paired.experiment_id = tested.experiment_id and paired.window_days = tested.window_days
    left join required
        on
            paired.experiment_id = required.experiment_id
            and paired.window_days = required.window_days
    cross join as_of

)

select * from final
