"""Stream processors: batch handlers that turn log events into ClickHouse projections."""
