"""Plugin writes: which INSERT, UPDATE and DELETE become which intent, and what is refused.

Pure: no engine, no log. The seed's own SQL strings (its "Plugin settings" and "RPC" examples)
are used verbatim where it has them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins_runtime.sql_scope import MAX_SQL_CHARS, PluginSqlRefused, scope_query
from plugins_runtime.sql_writes import (
    _PROFILE_TYPES,
    MAX_SETTINGS_BYTES,
    PROFILE_WRITABLE,
    KeyRevoke,
    ProfileWrite,
    SettingsWrite,
    WriteIntent,
    is_write,
    plan_write,
)
from schemas.events import PROFILE_FIELDS

ME, OTHER = "user-1", "user-2"
PLUGIN = "my-plugin"

# The seed's examples, character for character.
SEED_INSERT = """INSERT INTO plugin_settings (user_id, plugin, settings)
VALUES ($1, $2, $3)
ON CONFLICT (user_id, plugin) DO NOTHING"""
SEED_INSERT_PARAMS: list[object] = [ME, PLUGIN, json.dumps({"notify": True, "threshold": 3600})]
SEED_SET_THRESHOLD = """UPDATE plugin_settings SET settings = settings || $1
WHERE user_id = $2 AND plugin = $3"""
SEED_DELETE_ACCOUNT = "DELETE FROM users WHERE id = $1"

INSERT = "INSERT INTO plugin_settings (user_id, plugin, settings) VALUES ($1, $2, $3)"
UPSERT = INSERT + " ON CONFLICT (user_id, plugin) DO UPDATE SET settings = "
UPDATE = "UPDATE plugin_settings SET settings = $1 WHERE user_id = $2 AND plugin = $3"
DELETE = "DELETE FROM plugin_settings WHERE user_id = $1 AND plugin = $2"


def plan(sql: str, params: list[object]) -> WriteIntent:
    return plan_write(sql, params, plugin=PLUGIN, user_id=ME)


def refusal(sql: str, params: list[object]) -> PluginSqlRefused:
    with pytest.raises(PluginSqlRefused) as refused:
        plan(sql, params)
    assert refused.value.message
    return refused.value


# ---- allowed --------------------------------------------------------------------------------

ALLOWED: list[tuple[str, list[object], WriteIntent]] = [
    (
        SEED_INSERT,
        SEED_INSERT_PARAMS,
        SettingsWrite("insert_or_ignore", {"notify": True, "threshold": 3600}),
    ),
    (
        SEED_SET_THRESHOLD,
        ['{"threshold":7200}', ME, PLUGIN],
        SettingsWrite("update_merge", {"threshold": 7200}),
    ),
    (INSERT, [ME, PLUGIN, "{}"], SettingsWrite("insert", {})),
    (
        INSERT.replace("$3", "$3::jsonb"),
        [ME, PLUGIN, '{"a": [1]}'],
        SettingsWrite("insert", {"a": [1]}),
    ),
    # the columns in another order, the values follow them
    (
        "INSERT INTO plugin_settings (settings, plugin, user_id) VALUES ($1, $2, $3)",
        ['{"a": 1}', PLUGIN, ME],
        SettingsWrite("insert", {"a": 1}),
    ),
    # literals instead of parameters
    (
        "INSERT INTO plugin_settings (user_id, plugin, settings)"
        f" VALUES ('{ME}', '{PLUGIN}', '{{\"x\": null}}'::jsonb)",
        [],
        SettingsWrite("insert", {"x": None}),
    ),
    (
        UPSERT + "EXCLUDED.settings",
        [ME, PLUGIN, '{"a": 1}'],
        SettingsWrite("upsert_replace", {"a": 1}),
    ),
    (
        UPSERT + "plugin_settings.settings || EXCLUDED.settings",
        [ME, PLUGIN, '{"a": 1}'],
        SettingsWrite("upsert_merge", {"a": 1}),
    ),
    (
        UPSERT.lower() + "settings || excluded.settings",
        [ME, PLUGIN, {"a": 1}],  # an object as the parameter, as node-postgres would send it
        SettingsWrite("upsert_merge", {"a": 1}),
    ),
    (UPDATE, ['{"threshold": 1}', ME, PLUGIN], SettingsWrite("update_replace", {"threshold": 1})),
    (
        "UPDATE plugin_settings s SET settings = s.settings || $1::jsonb"
        " WHERE (s.plugin = $3) AND $2 = s.user_id",
        ['{"b": false}', ME, PLUGIN],
        SettingsWrite("update_merge", {"b": False}),
    ),
    (DELETE, [ME, PLUGIN], SettingsWrite("delete", None)),
    (
        "DELETE FROM plugin_settings WHERE plugin = $2 AND user_id = $1",
        [ME, PLUGIN],
        SettingsWrite("delete", None),
    ),
    (
        "UPDATE users SET bio = $1, is_public = $2, timeout_minutes = $3 WHERE id = $4",
        ["hello", True, 30, ME],
        ProfileWrite({"bio": "hello", "is_public": True, "timeout_minutes": 30}),
    ),
    (
        "UPDATE users SET profile_show_streak = false, country = 'DE', website = NULL"
        " WHERE id = $1",
        [ME],
        ProfileWrite({"profile_show_streak": False, "country": "DE", "website": ""}),
    ),
    ("DELETE FROM api_keys WHERE id = $1", ["key-1"], KeyRevoke("key-1")),
    ("DELETE FROM api_keys WHERE id = $1 AND user_id = $2", ["key-1", ME], KeyRevoke("key-1")),
    (
        "  -- revoke\n delete from API_KEYS where user_id = $2 and id = $1;",
        ["k", ME],
        KeyRevoke("k"),
    ),
]


@pytest.mark.parametrize(("sql", "params", "intent"), ALLOWED)
def test_allowed_writes_become_their_intent(
    sql: str, params: list[object], intent: WriteIntent
) -> None:
    assert is_write(sql)
    assert plan(sql, params) == intent


@pytest.mark.parametrize(("sql", "params", "intent"), ALLOWED)
def test_a_write_sent_down_the_query_path_is_refused_there(
    sql: str, params: list[object], intent: WriteIntent
) -> None:
    with pytest.raises(PluginSqlRefused) as refused:
        scope_query(sql, params)
    assert refused.value.code == "write_not_allowed"


def test_every_profile_field_but_the_username_is_writable_with_its_type() -> None:
    assert set(PROFILE_WRITABLE) == set(PROFILE_FIELDS) - {"username"}
    samples: dict[type, object] = {bool: True, int: 15, str: "x"}
    for field in PROFILE_WRITABLE:
        value = samples[_PROFILE_TYPES[field]]
        intent = plan(f"UPDATE users SET {field} = $1 WHERE id = $2", [value, ME])
        assert intent == ProfileWrite({field: value})


# ---- refused --------------------------------------------------------------------------------

REFUSED: list[tuple[str, list[object], str, str]] = [
    # the seed's delete-account RPC
    (SEED_DELETE_ACCOUNT, [ME], "write_not_allowed", "account settings"),
    # accounts, keys and everything read-only
    (
        "INSERT INTO users (id, username) VALUES ($1, $2)",
        [ME, "x"],
        "write_not_allowed",
        "signing up",
    ),
    (
        "INSERT INTO api_keys (id, user_id, name) VALUES ($1, $2, 'k')",
        ["k", ME],
        "write_not_allowed",
        "dashboard",
    ),
    ("UPDATE api_keys SET name = $1 WHERE id = $2", ["n", "k"], "write_not_allowed", "secret"),
    ("DELETE FROM heartbeats WHERE user_id = $1", [ME], "write_not_allowed", "read-only"),
    (
        "UPDATE daily_stats_cache SET total_seconds = 0 WHERE user_id = $1",
        [ME],
        "write_not_allowed",
        "plugin_settings",
    ),
    ("INSERT INTO plugin_store (id) VALUES ($1)", ["s"], "write_not_allowed", "read-only"),
    ("DELETE FROM plugin_reviews WHERE id = $1", ["r"], "write_not_allowed", "read-only"),
    ("DELETE FROM installed_plugins WHERE id = $1", ["i"], "write_not_allowed", "read-only"),
    ("DELETE FROM secrets WHERE id = $1", ["x"], "unknown_table", "does not exist"),
    ("DELETE FROM codetrackr.api_keys WHERE id = $1", ["k"], "qualified_table", "alone"),
    (
        "MERGE INTO plugin_settings USING users ON true WHEN MATCHED THEN DELETE",
        [],
        "write_not_allowed",
        "MERGE",
    ),
    ("SELECT settings FROM plugin_settings", [], "statement_not_allowed", "not a write"),
    ("DROP TABLE plugin_settings", [], "statement_not_allowed", "DROP"),
    ("DELETE FROM api_keys WHERE id = $1; DROP TABLE users", ["k"], "multiple_statements", "one"),
    # filterless, multi-row, other filters
    ("DELETE FROM plugin_settings", [], "where_not_allowed", "user_id = $n"),
    (
        "UPDATE plugin_settings SET settings = $1 WHERE user_id = $2",
        ["{}", ME],
        "where_not_allowed",
        "plugin",
    ),
    (
        "DELETE FROM plugin_settings WHERE user_id = $1 OR plugin = $2",
        [ME, PLUGIN],
        "where_not_allowed",
        "AND",
    ),
    (
        "DELETE FROM plugin_settings WHERE user_id = $1 AND plugin LIKE $2",
        [ME, "%"],
        "where_not_allowed",
        "=",
    ),
    (
        "DELETE FROM plugin_settings WHERE user_id = $1 AND plugin = $2 AND updated_at = $3",
        [ME, PLUGIN, 1],
        "where_not_allowed",
        "user_id",
    ),
    (
        "DELETE FROM plugin_settings WHERE user_id = $1 AND plugin = $2 AND plugin = $2",
        [ME, PLUGIN],
        "where_not_allowed",
        "twice",
    ),
    (
        "DELETE FROM plugin_settings WHERE user_id = user_id AND plugin = $1",
        [PLUGIN],
        "where_not_allowed",
        "=",
    ),
    ("UPDATE users SET bio = $1", ["x"], "where_not_allowed", "id = $n"),
    ("UPDATE users SET bio = $1 WHERE id <> $2", ["x", OTHER], "where_not_allowed", "="),
    ("DELETE FROM api_keys WHERE user_id = $1", [ME], "where_not_allowed", "id = $n"),
    (
        "DELETE FROM api_keys WHERE id = $1 AND name = $2",
        ["k", "n"],
        "where_not_allowed",
        "user_id",
    ),
    (
        "DELETE FROM api_keys WHERE id = $1 AND users.id = $2",
        ["k", ME],
        "where_not_allowed",
        "another table",
    ),
    # subqueries, CTEs, RETURNING, INSERT ... SELECT, several rows
    (
        "DELETE FROM api_keys WHERE id IN (SELECT id FROM api_keys)",
        [],
        "write_not_allowed",
        "subqueries",
    ),
    (
        "DELETE FROM api_keys WHERE id = (SELECT max(id) FROM api_keys)",
        [],
        "write_not_allowed",
        "subqueries",
    ),
    (
        "UPDATE users SET bio = (SELECT username FROM users) WHERE id = $1",
        [ME],
        "write_not_allowed",
        "subqueries",
    ),
    ("WITH k AS (SELECT 1) DELETE FROM api_keys WHERE id = $1", ["k"], "write_not_allowed", "WITH"),
    (
        "WITH k AS (DELETE FROM api_keys WHERE id = $1 RETURNING id) SELECT * FROM k",
        ["k"],
        "write_not_allowed",
        "CTE",
    ),
    ("DELETE FROM api_keys WHERE id = $1 RETURNING *", ["k"], "clause_not_allowed", "RETURNING"),
    (UPDATE + " RETURNING settings", ["{}", ME, PLUGIN], "clause_not_allowed", "RETURNING"),
    (
        "UPDATE users SET bio = $1 FROM api_keys WHERE id = $2",
        ["x", ME],
        "clause_not_allowed",
        "FROM",
    ),
    ("DELETE FROM api_keys USING users WHERE id = $1", ["k"], "clause_not_allowed", "USING"),
    ("DELETE FROM ONLY api_keys WHERE id = $1", ["k"], "clause_not_allowed", "ONLY"),
    (
        "INSERT INTO plugin_settings (user_id, plugin, settings) SELECT $1, $2, $3",
        [ME, PLUGIN, "{}"],
        "write_not_allowed",
        "VALUES",
    ),
    (INSERT + ", ($1, $2, $3)", [ME, PLUGIN, "{}"], "write_not_allowed", "one row"),
    (
        "INSERT INTO plugin_settings VALUES ($1, $2, $3)",
        [ME, PLUGIN, "{}"],
        "column_not_allowed",
        "name the columns",
    ),
    (
        "INSERT INTO plugin_settings (user_id, plugin) VALUES ($1, $2)",
        [ME, PLUGIN],
        "column_not_allowed",
        "exactly",
    ),
    (
        "INSERT INTO plugin_settings (user_id, plugin, settings, updated_at)"
        " VALUES ($1, $2, $3, $4)",
        [ME, PLUGIN, "{}", 0],
        "column_not_allowed",
        "exactly",
    ),
    (
        "INSERT INTO plugin_settings (user_id, plugin, settings) VALUES ($1, $2)",
        [ME, PLUGIN],
        "column_not_allowed",
        "values",
    ),
    # ON CONFLICT other than the two forms
    (
        INSERT + " ON CONFLICT ON CONSTRAINT pk DO NOTHING",
        [ME, PLUGIN, "{}"],
        "clause_not_allowed",
        "CONSTRAINT",
    ),
    (
        INSERT + " ON CONFLICT (plugin) DO NOTHING",
        [ME, PLUGIN, "{}"],
        "clause_not_allowed",
        "(user_id, plugin)",
    ),
    (
        INSERT + " ON CONFLICT DO UPDATE SET settings = EXCLUDED.settings",
        [ME, PLUGIN, "{}"],
        "clause_not_allowed",
        "(user_id, plugin)",
    ),
    (UPSERT + "$3", [ME, PLUGIN, "{}"], "write_not_allowed", "EXCLUDED"),
    (
        UPSERT + "EXCLUDED.settings || plugin_settings.settings",
        [ME, PLUGIN, "{}"],
        "write_not_allowed",
        "merge",
    ),
    (
        UPSERT + "EXCLUDED.settings, user_id = $1",
        [ME, PLUGIN, "{}"],
        "column_not_allowed",
        "settings only",
    ),
    (
        INSERT + " ON CONFLICT (user_id, plugin) DO UPDATE SET plugin = EXCLUDED.plugin",
        [ME, PLUGIN, "{}"],
        "column_not_allowed",
        "settings only",
    ),
    (
        UPSERT + "EXCLUDED.settings WHERE plugin_settings.plugin = $2",
        [ME, PLUGIN, "{}"],
        "clause_not_allowed",
        "WHERE",
    ),
    # columns that are never written
    (
        "UPDATE plugin_settings SET plugin = $1 WHERE user_id = $2 AND plugin = $3",
        ["x", ME, PLUGIN],
        "column_not_allowed",
        "settings",
    ),
    (
        "UPDATE plugin_settings SET settings = $1, user_id = $2 WHERE user_id = $2 AND plugin = $3",
        ["{}", ME, PLUGIN],
        "column_not_allowed",
        "settings",
    ),
    (
        "UPDATE plugin_settings SET settings = $1 || settings WHERE user_id = $2 AND plugin = $3",
        ["{}", ME, PLUGIN],
        "write_not_allowed",
        "settings || $1",
    ),
    (
        "UPDATE users SET username = $1 WHERE id = $2",
        ["new", ME],
        "column_not_allowed",
        "account settings",
    ),
    ("UPDATE users SET email = $1 WHERE id = $2", ["a@b.c", ME], "column_not_allowed", "email"),
    (
        "UPDATE users SET identity = $1 WHERE id = $2",
        ["github:1", ME],
        "column_not_allowed",
        "identity",
    ),
    ("UPDATE users SET id = $1 WHERE id = $2", [OTHER, ME], "column_not_allowed", "never changes"),
    (
        "UPDATE users SET password_hash = $1 WHERE id = $2",
        ["x", ME],
        "column_not_allowed",
        "display_name",
    ),
    (
        "UPDATE users SET bio = $1, bio = $2 WHERE id = $3",
        ["a", "b", ME],
        "column_not_allowed",
        "twice",
    ),
    # values that are not values
    ("UPDATE users SET bio = upper($1) WHERE id = $2", ["x", ME], "function_not_allowed", "UPPER"),
    ("UPDATE users SET bio = display_name WHERE id = $1", [ME], "write_not_allowed", "literals"),
    ("UPDATE users SET bio = $1 || 'x' WHERE id = $2", ["x", ME], "write_not_allowed", "literals"),
    (
        "UPDATE users SET timeout_minutes = $1::int WHERE id = $2",
        [5, ME],
        "write_not_allowed",
        "casts",
    ),
    ("DELETE FROM api_keys WHERE id = ?", ["k"], "bad_parameter", "$1"),
    ("DELETE FROM api_keys WHERE id = $2", ["k"], "missing_parameter", "$2"),
]


@pytest.mark.parametrize(("sql", "params", "code", "fragment"), REFUSED)
def test_writes_outside_the_allowed_forms_are_refused_with_a_clear_message(
    sql: str, params: list[object], code: str, fragment: str
) -> None:
    refused = refusal(sql, params)
    assert refused.code == code, refused.message
    assert fragment in refused.message


def test_the_generic_refusal_tells_the_author_what_is_allowed() -> None:
    refused = refusal("DELETE FROM heartbeats WHERE user_id = $1", [ME])
    for allowed in ("plugin_settings", "UPDATE users SET", "DELETE FROM api_keys"):
        assert allowed in refused.message


# ---- another user's or another plugin's row ----------------------------------------------

TAMPERED: list[tuple[str, list[object]]] = [
    (SEED_INSERT, [OTHER, PLUGIN, "{}"]),
    (SEED_INSERT, [ME, "other-plugin", "{}"]),
    (SEED_SET_THRESHOLD, ["{}", OTHER, PLUGIN]),
    (SEED_SET_THRESHOLD, ["{}", ME, "other-plugin"]),
    (SEED_SET_THRESHOLD, ["{}", ME, PLUGIN.upper()]),
    (UPSERT + "EXCLUDED.settings", [OTHER, PLUGIN, "{}"]),
    (UPDATE, ["{}", ME, None]),
    (DELETE, [OTHER, PLUGIN]),
    (DELETE, [ME, "other-plugin"]),
    (DELETE.replace("$1", f"'{OTHER}'"), [ME, PLUGIN]),
    ("UPDATE users SET bio = $1 WHERE id = $2", ["x", OTHER]),
    (SEED_DELETE_ACCOUNT.replace("users", "api_keys") + " AND user_id = $2", ["k", OTHER]),
]


@pytest.mark.parametrize(("sql", "params"), TAMPERED)
def test_a_row_of_another_user_or_plugin_is_refused(sql: str, params: list[object]) -> None:
    assert refusal(sql, params).code == "not_own_row"


@given(other=st.text(max_size=40).filter(lambda text: text != ME))
@settings(max_examples=50, deadline=None)
def test_any_other_user_id_is_refused_in_every_settings_form(other: str) -> None:
    for sql, params in (
        (SEED_INSERT, [other, PLUGIN, "{}"]),
        (SEED_SET_THRESHOLD, ["{}", other, PLUGIN]),
        (DELETE, [other, PLUGIN]),
        ("UPDATE users SET bio = $1 WHERE id = $2", ["x", other]),
    ):
        assert refusal(sql, params).code == "not_own_row"


# ---- parameters of the wrong type --------------------------------------------------------

BAD_SETTINGS: list[object] = [
    None,
    42,
    True,
    "not json",
    "[1, 2]",
    '"text"',
    "null",
    '{"a": NaN}',
    "[" * 5000 + "]" * 5000,
    ["a"],
    {"a": float("nan")},
    json.dumps({"big": "x" * MAX_SETTINGS_BYTES}),
]


@pytest.mark.parametrize("value", BAD_SETTINGS, ids=lambda value: repr(value)[:30])
def test_settings_that_are_not_a_json_object_of_bounded_size_are_refused(value: object) -> None:
    for sql, params in (
        (SEED_INSERT, [ME, PLUGIN, value]),
        (SEED_SET_THRESHOLD, [value, ME, PLUGIN]),
        (UPDATE, [value, ME, PLUGIN]),
    ):
        refused = refusal(sql, params)
        assert refused.code == "bad_parameter", refused.message


def test_settings_just_under_the_size_cap_are_accepted() -> None:
    text = json.dumps({"big": "x" * (MAX_SETTINGS_BYTES - 20)})
    assert len(text.encode()) <= MAX_SETTINGS_BYTES
    intent = plan(UPDATE, [text, ME, PLUGIN])
    assert isinstance(intent, SettingsWrite)
    assert intent.settings == json.loads(text)


BAD_PROFILE: list[tuple[str, object, str]] = [
    ("is_public", "true", "a boolean"),
    ("is_public", 1, "a boolean"),
    ("is_public", None, "null"),
    ("timeout_minutes", True, "an integer"),
    ("timeout_minutes", 1.5, "an integer"),
    ("timeout_minutes", "30", "an integer"),
    ("bio", 5, "text"),
    ("bio", {"a": 1}, "text"),
    ("timezone", None, "null"),
    ("country", ["DE"], "bad_parameter"),
]


@pytest.mark.parametrize(("field", "value", "fragment"), BAD_PROFILE)
def test_profile_values_of_the_wrong_type_are_refused(
    field: str, value: object, fragment: str
) -> None:
    refused = refusal(f"UPDATE users SET {field} = $1 WHERE id = $2", [value, ME])
    assert refused.code == "bad_parameter"
    assert fragment in str(refused)


@pytest.mark.parametrize("key_id", [5, None, "", True])
def test_a_key_id_that_is_not_text_is_refused(key_id: object) -> None:
    assert refusal("DELETE FROM api_keys WHERE id = $1", [key_id]).code == "bad_parameter"


@pytest.mark.parametrize("value", [b"bytes", object(), float("inf")])
def test_parameters_json_cannot_carry_are_refused(value: object) -> None:
    assert refusal("UPDATE users SET bio = $1 WHERE id = $2", [value, ME]).code == "bad_parameter"


# ---- settings round-trip -------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=6)


@given(value=JSON_OBJECTS, as_object=st.booleans())
@settings(max_examples=80, deadline=None)
def test_any_json_object_is_carried_as_given_in_every_mode(
    value: dict[str, Any], as_object: bool
) -> None:
    given_value: object = value if as_object else json.dumps(value)
    forms: list[tuple[str, list[object], str]] = [
        (INSERT, [ME, PLUGIN, given_value], "insert"),
        (SEED_INSERT, [ME, PLUGIN, given_value], "insert_or_ignore"),
        (UPSERT + "EXCLUDED.settings", [ME, PLUGIN, given_value], "upsert_replace"),
        (
            UPSERT + "plugin_settings.settings || EXCLUDED.settings",
            [ME, PLUGIN, given_value],
            "upsert_merge",
        ),
        (UPDATE, [given_value, ME, PLUGIN], "update_replace"),
        (SEED_SET_THRESHOLD, [given_value, ME, PLUGIN], "update_merge"),
    ]
    for sql, params, mode in forms:
        assert plan(sql, params) == SettingsWrite(mode, value)  # type: ignore[arg-type]


@given(text=st.text(max_size=200))
@settings(max_examples=50, deadline=None)
def test_profile_text_is_carried_as_given(text: str) -> None:
    assert plan("UPDATE users SET bio = $1 WHERE id = $2", [text, ME]) == ProfileWrite(
        {"bio": text}
    )


# ---- which path ----------------------------------------------------------------------------

IS_WRITE: list[tuple[str, bool]] = [
    (SEED_INSERT, True),
    (SEED_SET_THRESHOLD, True),
    (SEED_DELETE_ACCOUNT, True),
    ("/* a comment */ -- another\n  update users set bio = 'x'", True),
    ("MERGE INTO plugin_settings USING users ON true WHEN MATCHED THEN DELETE", True),
    ("SELECT settings FROM plugin_settings WHERE user_id = $1 AND plugin = $2", False),
    ("SELECT 'DELETE FROM users' AS text", False),
    ("WITH x AS (DELETE FROM api_keys RETURNING id) SELECT * FROM x", False),
    ("/* a /* nested */ comment */ DELETE FROM api_keys WHERE id = $1", True),
    ("/* a /* nested */ DELETE FROM api_keys WHERE id = $1", False),
    ("-- DELETE FROM api_keys", False),
    ("Insert\tINTO plugin_settings (user_id, plugin, settings) VALUES ($1, $2, $3)", True),
    ("updates", False),
    ("(SELECT 1)", False),
    ("", False),
    ("'unterminated", False),
    ("DELETE FROM api_keys WHERE id = $1" + " " * MAX_SQL_CHARS, False),
]


@pytest.mark.parametrize(("sql", "expected"), IS_WRITE)
def test_is_write_tells_which_path_a_statement_takes(sql: str, expected: bool) -> None:
    assert is_write(sql) is expected


def test_values_glued_to_commas_are_read() -> None:
    intent = plan(
        "INSERT INTO plugin_settings (user_id, plugin, settings) VALUES ($1,$2,$3)",
        [ME, PLUGIN, '{"a": 1}'],
    )
    assert intent == SettingsWrite("insert", {"a": 1})
