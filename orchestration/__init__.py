"""segmint's Dagster code location (``orchestration.definitions``)."""
