{#- The columns audience conditions may use: customer_profile's documented (contracted)
    columns from the graph (in dbt unit tests, which compile without the graph, the columns
    of the built customer_profile relation), and the prediction columns. -#}
{%- macro audience_columns() -%}
    {%- set node = (graph.get('nodes') or {}).get('model.segmint.customer_profile') -%}
    {%- if node -%}
        {{ return(node.columns.keys() | list + segmint.prediction_audience_columns()) }}
    {%- endif -%}
    {%- set profile = adapter.get_relation(target.database, 'marts', 'customer_profile') -%}
    {%- set names = adapter.get_columns_in_relation(profile) | map(attribute='name') | map('lower') | list -%}
    {{ return(names + segmint.prediction_audience_columns()) }}
{%- endmacro -%}

{#- The prediction columns (stg_ml__customer_predictions) audience conditions may use. -#}
{%- macro prediction_audience_columns() -%}
    {{ return([
        'probability_alive', 'expected_purchases_30d', 'expected_purchases_90d',
        'expected_purchases_365d', 'expected_spend', 'predicted_clv', 'predicted_clv_percentile',
        'churn_probability', 'purchase_probability_30d', 'purchase_probability_30d_percentile',
    ]) }}
{%- endmacro -%}
