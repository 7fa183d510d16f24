"""Projections: pure rules (durations, daily folds) and the ClickHouse store that holds their output."""
