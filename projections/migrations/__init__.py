"""Numbered ClickHouse migrations, applied in order at start-up."""
