{#- The experiments declared in the project: one per audience with an `experiment` entry in
    _audiences.yml (the audiences_override var replaces the list, as for customer_audiences),
    plus the global holdout when var global_holdout_share is above 0. Each is a mapping:
    experiment_id, audience_name (none for the global holdout), holdout_share, windows
    (days after entry at which results are read) and min_detectable_effect (absolute
    conversion uplift the sample size is planned for). Checked here, once for every model. -#}
{%- macro experiments() -%}
    {%- set node = (graph.get('nodes') or {}).get('model.segmint.customer_audiences') or {} -%}
    {%- set declared = ((node.get('config') or {}).get('meta') or {}).get('audiences') or [] -%}
    {%- set audiences = var('audiences_override', none) or declared -%}
    {%- set out = [] -%}
    {%- for audience in audiences if audience is mapping and audience.get('experiment') -%}
        {%- set e = audience['experiment'] -%}
        {%- set where = "audience '" ~ audience.get('name') ~ "', experiment" -%}
        {%- if e is not mapping -%}
            {{ exceptions.raise_compiler_error(where ~ ": expected a mapping") }}
        {%- endif -%}
        {%- for key in e.keys() if key not in ['id', 'holdout_share', 'windows', 'min_detectable_effect'] -%}
            {{ exceptions.raise_compiler_error(where ~ ": unknown key '" ~ key ~ "' (expected id, holdout_share, windows, min_detectable_effect)") }}
        {%- endfor -%}
        {%- do out.append(segmint.experiment_spec(
            e.get('id', audience['name']), audience['name'], e.get('holdout_share'),
            e.get('windows', [7, 30, 90]), e.get('min_detectable_effect', 0.02), where)) -%}
    {%- endfor -%}
    {%- set share = var('global_holdout_share', 0) -%}
    {%- if share -%}
        {%- do out.append(segmint.experiment_spec(
            'global', none, share, var('global_holdout_windows', [7, 30, 90]),
            var('global_holdout_min_detectable_effect', 0.02), 'var global_holdout_share')) -%}
    {%- endif -%}
    {%- set ids = out | map(attribute='experiment_id') | list -%}
    {%- for id in ids if ids.count(id) > 1 -%}
        {{ exceptions.raise_compiler_error("experiment id '" ~ id ~ "' is declared twice") }}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro -%}

{%- macro experiment_spec(id, audience, share, windows, effect, where) -%}
    {%- if id is not string or not modules.re.fullmatch('[a-z][a-z0-9_]{0,62}', id) -%}
        {{ exceptions.raise_compiler_error(where ~ ": id must be lower snake case, got " ~ id) }}
    {%- endif -%}
    {%- if share is boolean or share is not number or share <= 0 or share >= 1 -%}
        {{ exceptions.raise_compiler_error(where ~ ": holdout_share must be a number between 0 and 1, got " ~ share) }}
    {%- endif -%}
    {%- if windows is string or windows is not sequence or windows | length == 0 -%}
        {{ exceptions.raise_compiler_error(where ~ ": windows must be a list of days") }}
    {%- endif -%}
    {%- for w in windows if w is boolean or w is not integer or w < 1 -%}
        {{ exceptions.raise_compiler_error(where ~ ": window " ~ w ~ " is not a positive number of days") }}
    {%- endfor -%}
    {%- if effect is boolean or effect is not number or effect <= 0 or effect >= 1 -%}
        {{ exceptions.raise_compiler_error(where ~ ": min_detectable_effect must be between 0 and 1, got " ~ effect) }}
    {%- endif -%}
    {{ return({'experiment_id': id, 'audience_name': audience, 'holdout_share': share,
               'windows': windows | sort, 'min_detectable_effect': effect}) }}
{%- endmacro -%}

{#- A number in [0, 1) from the first four hex digits of an md5 hex string: 65,536 equal
    buckets, the same on every warehouse (and in Python: int(md5[:4], 16) / 65536). -#}
{%- macro hex_fraction(hex) -%}
    (
        {%- for i in range(4) %}
            (position(substr({{ hex }}, {{ i + 1 }}, 1) in '0123456789abcdef') - 1) * {{ 16 ** (3 - i) }}
            {%- if not loop.last %} +{% endif %}
        {%- endfor %}
    ) / 65536.0
{%- endmacro -%}

{#- The two-sided p-value of a standard normal statistic z: erfc(|z| / sqrt 2) by Abramowitz
    and Stegun 7.1.26 (absolute error below 1.5e-7), in plain SQL on any warehouse. -#}
{%- macro normal_two_sided_p(z) -%}
    {%- set t = "(1.0 / (1.0 + 0.3275911 * abs(" ~ z ~ ") / sqrt(2.0)))" -%}
    (
        (0.254829592 * {{ t }} - 0.284496736 * power({{ t }}, 2)
         + 1.421413741 * power({{ t }}, 3) - 1.453152027 * power({{ t }}, 4)
         + 1.061405429 * power({{ t }}, 5))
        * exp(-({{ z }}) * ({{ z }}) / 2.0)
    )
{%- endmacro -%}
