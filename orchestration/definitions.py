"""segmint's Dagster code location: `dagster dev -m orchestration.definitions`.

Importing this module does no work: Dagster calls `defs()` when it loads the code location.
That call builds the settings once (from the environment), makes sure the dbt manifest
matches the project, and assembles the assets, checks, job, schedule, sensor and resources.
"""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from orchestration.build import build_definitions
    from segmint.config import export_environment

    return build_definitions(export_environment())
