-- Scoring inside the warehouse: every customer of customer_features assigned to the nearest
-- centroid of the latest clustering run, recomputing the model's preprocessing in SQL
-- from ml.cluster_scaling (impute, log1p or one-hot, robust scaling) and ml.cluster_projection
-- (PCA), then the squared Euclidean distance to each centroid of ml.cluster_centroids.
-- For k-means this is exactly the model's assignment; on Snowflake it scores without Python.
-- Until the clustering asset has run, the model is empty.
-- depends_on: {{ ref('customer_features') }}
-- depends_on: {{ source('ml', 'cluster_scaling') }}
-- depends_on: {{ source('ml', 'cluster_projection') }}
-- depends_on: {{ source('ml', 'cluster_centroids') }}
{%- set runs = source('ml', 'segmentation_runs') %}
{%- set latest = none %}
{%- if execute and adapter.get_relation(runs.database, runs.schema, runs.identifier) is not none %}
    {%- set found = run_query("select run_id from " ~ runs ~ " order by trained_at desc, run_id desc limit 1") %}
    {%- if found.rows | length > 0 %}{% set latest = found.rows[0][0] %}{% endif %}
{%- endif %}

{%- if latest is none %}

    select
        cast(null as varchar) as customer_id,
        cast(null as bigint) as segment_id,
        cast(null as double) as distance,
        cast(null as varchar) as model_version
    where false

{%- else %}
    {%- set run_literal = "'" ~ (latest | replace("'", "''")) ~ "'" %}
    {%- set scaling = segmint.query_rows(
        "select position, input_column, transform, category, impute_value, frequent_categories, "
        ~ "center, scale from " ~ source('ml', 'cluster_scaling')
        ~ " where run_id = " ~ run_literal ~ " order by position") %}
    {%- set projection = segmint.query_rows(
        "select component, position, weight, mean from " ~ source('ml', 'cluster_projection')
        ~ " where run_id = " ~ run_literal ~ " order by component, position") %}
    {%- set centroids = segmint.query_rows(
        "select segment_id, dimension, value from " ~ source('ml', 'cluster_centroids')
        ~ " where run_id = " ~ run_literal ~ " and space = 'model' order by segment_id, dimension") %}
    {%- set allowed = adapter.get_columns_in_relation(ref('customer_features')) | map(attribute='name') | map('lower') | list %}
    {%- set prepared = [] %}
    {%- for row in scaling %}
        {%- set column = row['input_column'] | lower %}
        {%- if column not in allowed %}
            {{ exceptions.raise_compiler_error("ml.cluster_scaling of run " ~ latest ~ " names column '" ~ column ~ "', which customer_features does not have") }}
        {%- endif %}
        {%- if row['transform'] == 'log1p' %}
            {%- set expr = "ln(1 + coalesce(cast(" ~ column ~ " as double), " ~ row['impute_value'] ~ "))" %}
        {%- elif row['transform'] == 'identity' %}
            {%- set expr = "coalesce(cast(" ~ column ~ " as double), " ~ row['impute_value'] ~ ")" %}
        {%- elif row['transform'] == 'onehot' %}
            {%- set expr = "case when coalesce(cast(" ~ column ~ " as varchar), 'unknown') = '" ~ (row['category'] | replace("'", "''")) ~ "' then 1.0 else 0.0 end" %}
        {%- elif row['transform'] == 'onehot_infrequent' %}
            {%- set frequent = fromjson(row['frequent_categories']) %}
            {%- set quoted = [] %}
            {%- for c in frequent %}{% do quoted.append("'" ~ (c | replace("'", "''")) ~ "'") %}{% endfor %}
            {%- set expr = "case when coalesce(cast(" ~ column ~ " as varchar), 'unknown') in (" ~ (quoted | join(', ') if quoted else "''") ~ ") then 0.0 else 1.0 end" %}
        {%- else %}
            {{ exceptions.raise_compiler_error("unknown transform '" ~ row['transform'] ~ "' in ml.cluster_scaling") }}
        {%- endif %}
        {%- do prepared.append("(" ~ expr ~ " - " ~ row['center'] ~ ") / " ~ row['scale']) %}
    {%- endfor %}

with

features as (

    select * from {{ ref('customer_features') }}

),

scaled as (

    select
        customer_id,
        {%- for expr in prepared %}
        {{ expr }} as x{{ loop.index0 }}{{ "," if not loop.last }}
        {%- endfor %}
    from features

),

{%- set dims = [] %}
{%- if projection | length > 0 %}
projected as (

    select
        customer_id,
        {%- set components = projection | map(attribute='component') | unique | list %}
        {%- for component in components %}
        {%- set terms = [] %}
        {%- for row in projection if row['component'] == component %}
            {%- do terms.append("(x" ~ row['position'] ~ " - " ~ row['mean'] ~ ") * " ~ row['weight']) %}
        {%- endfor %}
        {{ terms | join(' + ') }} as z{{ loop.index0 }}{{ "," if not loop.last }}
        {%- do dims.append("z" ~ loop.index0) %}
        {%- endfor %}
    from scaled

),
{%- else %}
    {%- for expr in prepared %}{% do dims.append("x" ~ loop.index0) %}{% endfor %}
projected as (

    select * from scaled

),
{%- endif %}

distances as (
    {%- set segments = centroids | map(attribute='segment_id') | unique | list %}
    {%- for segment in segments %}
    {%- set terms = [] %}
    {%- for row in centroids if row['segment_id'] == segment %}
        {%- do terms.append("(" ~ dims[row['dimension'] | int] ~ " - " ~ row['value'] ~ ") * (" ~ dims[row['dimension'] | int] ~ " - " ~ row['value'] ~ ")") %}
    {%- endfor %}

    select
        customer_id,
        cast({{ segment }} as bigint) as segment_id,
        {{ terms | join(' + ') }} as squared_distance
    from projected
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

ranked as (

    select
        customer_id,
        segment_id,
        squared_distance,
        row_number() over (
            partition by customer_id order by squared_distance, segment_id
        ) as distance_rank
    from distances

),

final as (

    select
        customer_id,
        segment_id,
        sqrt(squared_distance) as distance,
        cast({{ run_literal }} as varchar) as model_version
    from ranked
    where distance_rank = 1

)

select * from final

{%- endif %}
