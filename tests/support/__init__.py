"""Test-only support code: tools the tests start and drive, never imported by the product.

* :mod:`tests.support.chdb_http`: the chdb HTTP stand-in, a small process that serves the subset of
  ClickHouse's HTTP interface that clickhouse-connect uses and runs every query on the real
  ClickHouse engine (chdb) it holds. A test tool, not a ClickHouse server.
"""
