"""Clustering library for segmint (pure pandas / scikit-learn; no Dagster, no warehouse)."""
