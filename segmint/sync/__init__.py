"""Reverse sync of segment tags to CRMs: plan against a state table, then apply changes."""
