"""What analysts may run: the pure check before the engine's own read-only settings."""

from __future__ import annotations

import pytest

from api.rules.analyst_sql import AnalystSqlRefused, check_analyst_sql

ALLOWED = frozenset({"codetrackr", "codetrackr_analytics"})


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count() FROM daily",
        "SELECT * FROM codetrackr_analytics.daily_breakdown WHERE dimension = 'language'",
        "WITH t AS (SELECT user_id FROM codetrackr.daily_stats FINAL) SELECT count() FROM t",
        "SELECT 1 UNION ALL SELECT 2",
        "SELECT name FROM system.tables WHERE database = 'codetrackr_analytics'",
        "SELECT number FROM system.numbers LIMIT 3",
        "DESCRIBE TABLE codetrackr_analytics.daily",
        "SHOW TABLES FROM codetrackr_analytics",
        "SHOW DATABASES",
        "SELECT 1 FORMAT JSON;",
    ],
)
def test_allowed(sql: str) -> None:
    assert check_analyst_sql(sql, allowed_databases=ALLOWED).sql == sql.rstrip(";")


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("", "empty"),
        ("SELECT 1; SELECT 2", "multiple_statements"),
        ("SELEC 1", "syntax"),
        ("INSERT INTO codetrackr.heartbeats VALUES (1)", "statement_not_allowed"),
        ("ALTER TABLE codetrackr.heartbeats DELETE WHERE 1", "statement_not_allowed"),
        ("DROP DATABASE codetrackr", "statement_not_allowed"),
        ("SET readonly = 0", "statement_not_allowed"),
        ("SELECT 1 SETTINGS max_result_rows = 0", "settings_not_allowed"),
        ("SELECT * FROM (SELECT 1 SETTINGS readonly = 0)", "settings_not_allowed"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table_function"),
        ("SELECT * FROM daily JOIN remote('h', 'db', 't') USING user_id", "table_function"),
        ("SELECT * FROM (SELECT * FROM s3('https://x/y.csv'))", "table_function"),
        ("DESCRIBE TABLE url('http://x', CSV)", "table_function"),
        ("SELECT * FROM system.users", "system_table"),
        ("SELECT * FROM system.query_log", "system_table"),
        ("SELECT * FROM other_db.t", "database_not_allowed"),
        ("SHOW TABLES FROM other_db", "database_not_allowed"),
        ("SHOW GRANTS", "statement_not_allowed"),
        ("SELECT '" + "x" * 100_001 + "'", "too_long"),
    ],
)
def test_refused(sql: str, code: str) -> None:
    with pytest.raises(AnalystSqlRefused) as refused:
        check_analyst_sql(sql, allowed_databases=ALLOWED)
    assert refused.value.code == code


def test_a_format_clause_of_its_own_is_noticed() -> None:
    assert check_analyst_sql("SELECT 1 FORMAT CSV", allowed_databases=ALLOWED).has_format
    assert not check_analyst_sql("SELECT 'FORMAT'", allowed_databases=ALLOWED).has_format
