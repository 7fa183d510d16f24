"""Projections: pure rules (durations, daily folds) and the ClickHouse store holding them."""
