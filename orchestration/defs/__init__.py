"""Dagster definitions grouped by integration: ingestion, dbt, automation, resources."""
