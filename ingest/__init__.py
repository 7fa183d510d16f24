"""Ingest service: accepts heartbeats in every dialect, normalizes them, appends them to the log."""
