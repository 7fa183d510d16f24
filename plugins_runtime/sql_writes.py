"""Plugin writes, checked and turned into typed intents before anything changes. Pure: no I/O.

The seed lets a plugin write with ``ctx.db.query`` too: its own ``plugin_settings`` row, its
user's own profile, its user's own API keys. Nothing here touches a database: :func:`plan_write`
reads one INSERT, UPDATE or DELETE (sqlglot, Postgres dialect, the same parse and the same
:class:`~plugins_runtime.sql_scope.PluginSqlRefused` codes as queries) and returns what it asks
for as a :data:`WriteIntent`:

* :class:`SettingsWrite`: the calling plugin's settings row of the calling user (``mode`` says
  how: insert, insert or ignore, upsert, update, merge, delete; ``settings`` is the JSON object);
* :class:`ProfileWrite`: profile fields of the calling user (the fields of
  :class:`schemas.events.ProfileUpdated` but ``username``), type-checked;
* :class:`KeyRevoke`: one API key to revoke (the host checks it is one of the caller's keys).

The host turns an intent into an event on the log (so a replay rebuilds the same state) and
answers the plugin; that glue is not here. Every other write is refused with a message telling
the plugin's author what is allowed. The checks are an allow-list of shapes: a statement is
accepted only when every part of its tree is one this module reads, so a clause sqlglot learns
later is refused rather than ignored.

:func:`is_write` tells the host which path a plugin's SQL takes (its first word, no parse): a
statement whose first word after comments is INSERT, UPDATE, DELETE or MERGE goes to
:func:`plan_write`, anything else to :func:`~plugins_runtime.sql_scope.scope_query`, which
refuses a write it finds inside a query (``WITH x AS (DELETE ...) SELECT ...``) with
``write_not_allowed``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, TypeAlias, get_args

from sqlglot import exp

from plugins_runtime.relations import RELATIONS
from plugins_runtime.sql_scope import MAX_SQL_CHARS, PluginSqlRefused, parse_statement
from schemas.events import PROFILE_FIELDS, PROFILE_TEXT_FIELDS, ProfileUpdated

__all__ = [
    "MAX_SETTINGS_BYTES",
    "PROFILE_WRITABLE",
    "KeyRevoke",
    "ProfileWrite",
    "SettingsMode",
    "SettingsWrite",
    "WriteIntent",
    "is_write",
    "plan_write",
]

# A settings object, as compact JSON text (UTF-8 bytes).
MAX_SETTINGS_BYTES = 64 * 1024

SettingsMode = Literal[
    "insert",  # INSERT: a row already there is an error (the host answers a duplicate key)
    "insert_or_ignore",  # ON CONFLICT DO NOTHING: a row already there is kept as it is
    "upsert_replace",  # ON CONFLICT DO UPDATE SET settings = EXCLUDED.settings
    "upsert_merge",  # ... SET settings = plugin_settings.settings || EXCLUDED.settings
    "update_replace",  # UPDATE ... SET settings = $1: no row, nothing happens
    "update_merge",  # UPDATE ... SET settings = settings || $1: no row, nothing happens
    "delete",  # DELETE: no row, nothing happens
]


@dataclass(frozen=True, slots=True)
class SettingsWrite:
    """The calling plugin's ``plugin_settings`` row of the calling user.

    ``settings`` is the JSON object given (None for ``delete``). A merge is jsonb's ``||``: the
    given object's top-level keys replace the stored ones, the others are kept.
    """

    mode: SettingsMode
    settings: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ProfileWrite:
    """Profile fields of the calling user, under :class:`schemas.events.ProfileUpdated`'s names.

    Types are checked here (text, integer, boolean); a text field set to NULL is ``""`` (which
    clears it, as in the event). Values are not: the host validates them with the profile form's
    rules (timezone, URL, country code, lengths, timeout range) before recording the event.
    """

    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KeyRevoke:
    """Revoke one API key; the host refuses it unless the key is one of the caller's."""

    key_id: str


WriteIntent: TypeAlias = SettingsWrite | ProfileWrite | KeyRevoke

# Profile fields a plugin may set: the event's, but the account's name (renaming is the user's
# own act; it can also fail on a clash, which a plugin cannot resolve).
PROFILE_WRITABLE: tuple[str, ...] = tuple(name for name in PROFILE_FIELDS if name != "username")


def _profile_types() -> dict[str, type]:
    types: dict[str, type] = {}
    for name in PROFILE_WRITABLE:
        annotation = ProfileUpdated.model_fields[name].annotation
        (kind,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        types[name] = kind
    return types


_PROFILE_TYPES = _profile_types()
_NEVER_WRITTEN = {
    "username": "the username is changed by the user in the account settings",
    "email": "the email address is never written by plugins",
    "identity": "the sign-in identity is never written by plugins",
    "id": "an account's id never changes",
    "created_at": "created_at is not writable",
}

_ALLOWED = (
    "plugins may write their own plugin_settings row"
    " (INSERT INTO plugin_settings (user_id, plugin, settings) VALUES ($1, $2, $3) [ON CONFLICT"
    " (user_id, plugin) DO NOTHING | DO UPDATE SET settings = EXCLUDED.settings],"
    " UPDATE plugin_settings SET settings = [settings ||] $1 WHERE user_id = $2 AND plugin = $3,"
    " DELETE FROM plugin_settings WHERE user_id = $1 AND plugin = $2),"
    " their user's profile fields (UPDATE users SET bio = $1 WHERE id = $2)"
    " and revoke their user's API keys (DELETE FROM api_keys WHERE id = $1)"
)
_SETTINGS_KEYS = frozenset({"user_id", "plugin"})
_SETTINGS_COLUMNS = ("user_id", "plugin", "settings")
_PARAMETER_NAME = re.compile(r"[1-9][0-9]{0,2}")
_TEXT_CASTS = frozenset(
    {
        exp.DataType.Type.JSON,
        exp.DataType.Type.JSONB,
        exp.DataType.Type.TEXT,
        exp.DataType.Type.VARCHAR,
    }
)
_CLAUSES = {
    "with": "WITH (a CTE) in a write",
    "with_": "WITH (a CTE) in a write",
    "returning": "RETURNING",
    "from": "UPDATE ... FROM",
    "from_": "UPDATE ... FROM",
    "using": "DELETE ... USING",
    "order": "ORDER BY in a write",
    "limit": "LIMIT in a write",
    "only": "ONLY",
    "constraint": "ON CONFLICT ON CONSTRAINT (write ON CONFLICT (user_id, plugin))",
    "where": "a WHERE on ON CONFLICT DO UPDATE",
}
_WRITE_WORD = re.compile(r"(?i)(?:insert|update|delete|merge)(?![A-Za-z0-9_$])")


def is_write(sql: str) -> bool:
    """True when ``sql`` starts with INSERT, UPDATE, DELETE or MERGE (comments skipped).

    The host sends such SQL to :func:`plan_write` and everything else to ``scope_query``. Both
    answers fail closed: a write sent to ``scope_query`` is refused there, a read sent to
    :func:`plan_write` is refused with ``statement_not_allowed``. Only the leading whitespace and
    comments are read, never the rest of the statement.
    """
    if len(sql) > MAX_SQL_CHARS:
        return False  # either path refuses it as too_long
    position = 0
    while True:
        while position < len(sql) and sql[position].isspace():
            position += 1
        if sql.startswith("--", position):
            newline = sql.find("\n", position)
            if newline < 0:
                return False
            position = newline + 1
        elif sql.startswith("/*", position):
            position = _block_comment_end(sql, position)
            if position < 0:
                return False
        else:
            return _WRITE_WORD.match(sql, position) is not None


def _block_comment_end(sql: str, position: int) -> int:
    """Where the block comment at ``position`` ends (they nest in Postgres); -1 if never."""
    depth = 0
    while position < len(sql):
        if sql.startswith("/*", position):
            depth, position = depth + 1, position + 2
        elif sql.startswith("*/", position):
            depth, position = depth - 1, position + 2
            if depth == 0:
                return position
        else:
            position += 1
    return -1


def plan_write(sql: str, params: Sequence[object], *, plugin: str, user_id: str) -> WriteIntent:
    """What the plugin ``plugin`` running for ``user_id`` asks to write with ``sql``.

    ``params`` are the ``$1``, ``$2`` ... values (str, int, float, bool, None; a settings object
    may also be given as an object). Raises :class:`PluginSqlRefused` for anything but the
    allowed writes (see the module docs), with a message for the plugin's author.
    """
    tree = _write_statement(parse_statement(sql))
    reader = _Reader(params)
    if isinstance(tree, exp.Insert):
        table, qualifiers = _target(
            tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        )
        if table == "plugin_settings":
            return _settings_insert(tree, reader, qualifiers, plugin=plugin, user_id=user_id)
        _refuse_table(table, "INSERT")
    table, qualifiers = _target(tree.this)
    if isinstance(tree, exp.Update):
        if table == "plugin_settings":
            return _settings_update(tree, reader, qualifiers, plugin=plugin, user_id=user_id)
        if table == "users":
            return _profile_update(tree, reader, qualifiers, user_id=user_id)
        _refuse_table(table, "UPDATE")
    if table == "plugin_settings":
        _only_args(tree, "this", "where")
        keys = _key_values(tree, reader, qualifiers, _SETTINGS_KEYS, required=_SETTINGS_KEYS)
        _own_settings_row(keys["user_id"], keys["plugin"], plugin=plugin, user_id=user_id)
        return SettingsWrite("delete", None)
    if table == "api_keys":
        return _key_revoke(tree, reader, qualifiers, user_id=user_id)
    _refuse_table(table, "DELETE")


# ---- the statement as a whole ---------------------------------------------------------------


def _write_statement(tree: exp.Expr) -> exp.Insert | exp.Update | exp.Delete:
    if not isinstance(tree, exp.Insert | exp.Update | exp.Delete):
        if any(isinstance(node, exp.Insert | exp.Update | exp.Delete) for node in tree.walk()):
            _refuse(
                "write_not_allowed", f"a write inside a query (a CTE) is not allowed; {_ALLOWED}"
            )
        if isinstance(tree, exp.Merge | exp.Copy):
            _refuse("write_not_allowed", f"{tree.key.upper()} is not allowed; {_ALLOWED}")
        verb = str(tree.this).upper() if isinstance(tree, exp.Command) else tree.key.upper()
        _refuse("statement_not_allowed", f"{verb} is not a write: only INSERT, UPDATE and DELETE")
    for name in ("with", "with_"):
        if tree.args.get(name):
            _refuse("write_not_allowed", f"WITH (a CTE) in a write is not allowed; {_ALLOWED}")
    if isinstance(tree, exp.Insert) and isinstance(tree.expression, exp.Query):
        _refuse("write_not_allowed", "INSERT ... SELECT is not allowed: insert one row with VALUES")
    for node in tree.walk():
        if node is not tree and isinstance(node, exp.Query | exp.Subquery):
            _refuse("write_not_allowed", "subqueries are not allowed in a write: pass values as $n")
        if isinstance(node, exp.Command):
            _refuse("statement_not_allowed", f"{str(node.this).upper()} is not allowed")
    return tree


def _only_args(node: exp.Expr, *allowed: str) -> None:
    """Refuse a node that carries any part this module does not read."""
    for key, value in node.args.items():
        if value and key not in allowed and not key.startswith("_"):
            what = _CLAUSES.get(key, f"{key.upper()} on {node.key.upper()}")
            _refuse("clause_not_allowed", f"{what} is not allowed in a write")


def _target(table: exp.Expr) -> tuple[str, frozenset[str]]:
    """The written table's name and the names its columns may be qualified with."""
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        _refuse("table_function", "write to a table by its name")
    if table.args.get("db") or table.args.get("catalog"):
        _refuse("qualified_table", f"{table.sql(dialect='postgres')}: name the table alone")
    _only_args(table, "this", "alias")
    name = table.name.lower()
    if name not in RELATIONS:
        _refuse("unknown_table", f"table {table.name!r} does not exist; {_ALLOWED}")
    alias = table.args.get("alias")
    qualifiers = {name}
    if alias is not None:
        _only_args(alias, "this")
        qualifiers.add(alias.name.lower())
    return name, frozenset(qualifiers)


def _refuse_table(table: str, verb: str) -> NoReturn:
    if table == "users" and verb == "DELETE":
        _refuse(
            "write_not_allowed",
            "accounts are deleted by their user from the account settings, not by plugins",
        )
    if table == "users":
        _refuse("write_not_allowed", "accounts are created by signing up, not by plugins")
    if table == "api_keys":
        _refuse(
            "write_not_allowed",
            f"{verb} api_keys: keys are created and named in the dashboard, a plugin never"
            " handles a key's secret; a plugin may only revoke one"
            " (DELETE FROM api_keys WHERE id = $1)",
        )
    _refuse("write_not_allowed", f"{verb} {table}: {table} is read-only; {_ALLOWED}")


# ---- plugin_settings -------------------------------------------------------------------------


def _settings_insert(
    tree: exp.Insert,
    reader: _Reader,
    qualifiers: frozenset[str],
    *,
    plugin: str,
    user_id: str,
) -> SettingsWrite:
    _only_args(tree, "this", "expression", "conflict")
    example = "INSERT INTO plugin_settings (user_id, plugin, settings) VALUES ($1, $2, $3)"
    schema = tree.this
    if not isinstance(schema, exp.Schema):
        _refuse("column_not_allowed", f"name the columns: {example}")
    _only_args(schema, "this", "expressions")
    names = [_plain_name(ident) for ident in schema.expressions]
    if sorted(names) != sorted(_SETTINGS_COLUMNS):
        _refuse("column_not_allowed", f"insert exactly user_id, plugin and settings: {example}")
    values = tree.expression
    if not isinstance(values, exp.Values):
        _refuse("write_not_allowed", f"insert one row with VALUES: {example}")
    _only_args(values, "expressions")
    if len(values.expressions) != 1:
        _refuse("write_not_allowed", f"insert one row, got {len(values.expressions)}: {example}")
    (row,) = values.expressions
    items = row.expressions if isinstance(row, exp.Tuple) else [row]
    if len(items) != len(names):
        _refuse("column_not_allowed", f"{len(names)} columns but {len(items)} values: {example}")
    given = dict(zip(names, items, strict=True))
    _own_settings_row(
        reader.value(given["user_id"]),
        reader.value(given["plugin"]),
        plugin=plugin,
        user_id=user_id,
    )
    settings = _settings_object(reader.value(given["settings"]))
    conflict = tree.args.get("conflict")
    if conflict is None:
        return SettingsWrite("insert", settings)
    return SettingsWrite(_conflict_mode(conflict, qualifiers), settings)


def _conflict_mode(conflict: exp.Expr, qualifiers: frozenset[str]) -> SettingsMode:
    _only_args(conflict, "action", "conflict_keys", "expressions")
    keys = []
    for key in conflict.args.get("conflict_keys") or []:
        column = key.this if isinstance(key, exp.Ordered) else key
        keys.append(_column_name(column, qualifiers) if isinstance(column, exp.Column) else "")
    action = str(getattr(conflict.args.get("action"), "this", "")).upper()
    if keys and sorted(keys) != sorted(_SETTINGS_KEYS):
        _refuse("clause_not_allowed", "the conflict target is the row's key: (user_id, plugin)")
    if action == "DO NOTHING":
        return "insert_or_ignore"
    if action != "DO UPDATE" or not keys:
        _refuse("clause_not_allowed", "write ON CONFLICT (user_id, plugin) DO NOTHING | DO UPDATE")
    forms = (
        "DO UPDATE SET settings = EXCLUDED.settings (replace) or"
        " SET settings = plugin_settings.settings || EXCLUDED.settings (merge)"
    )
    assignments = conflict.expressions
    if len(assignments) != 1 or not isinstance(assignments[0], exp.EQ):
        _refuse("column_not_allowed", f"set settings only: {forms}")
    target, value = assignments[0].this, assignments[0].expression
    if not isinstance(target, exp.Column) or _column_name(target, qualifiers) != "settings":
        _refuse("column_not_allowed", f"set settings only: {forms}")
    if _is_excluded_settings(value):
        return "upsert_replace"
    if (
        isinstance(value, exp.DPipe)
        and _is_column(value.this, "settings", qualifiers)
        and _is_excluded_settings(value.expression)
    ):
        return "upsert_merge"
    _refuse(
        "write_not_allowed", f"on a conflict the settings may only be replaced or merged: {forms}"
    )


def _settings_update(
    tree: exp.Update,
    reader: _Reader,
    qualifiers: frozenset[str],
    *,
    plugin: str,
    user_id: str,
) -> SettingsWrite:
    _only_args(tree, "this", "expressions", "where")
    forms = "SET settings = $1 (replace) or SET settings = settings || $1 (merge)"
    if len(tree.expressions) != 1 or not isinstance(tree.expressions[0], exp.EQ):
        _refuse("column_not_allowed", f"only settings can be set: {forms}")
    target, value = tree.expressions[0].this, tree.expressions[0].expression
    if not isinstance(target, exp.Column) or _column_name(target, qualifiers) != "settings":
        _refuse("column_not_allowed", f"only settings can be set: {forms}")
    keys = _key_values(tree, reader, qualifiers, _SETTINGS_KEYS, required=_SETTINGS_KEYS)
    _own_settings_row(keys["user_id"], keys["plugin"], plugin=plugin, user_id=user_id)
    if isinstance(value, exp.DPipe):
        if not _is_column(value.this, "settings", qualifiers):
            _refuse("write_not_allowed", f"merge into the stored settings: {forms}")
        return SettingsWrite("update_merge", _settings_object(reader.value(value.expression)))
    return SettingsWrite("update_replace", _settings_object(reader.value(value)))


def _own_settings_row(
    given_user: object, given_plugin: object, *, plugin: str, user_id: str
) -> None:
    if given_user != user_id:
        _refuse("not_own_row", "user_id must be the user the plugin runs for (ctx.user_id)")
    if given_plugin != plugin:
        _refuse("not_own_row", f"plugin must be this plugin's own name, {plugin!r}")


def _settings_object(value: object) -> dict[str, Any]:
    """The settings value as a JSON object: JSON text (``JSON.stringify``) or an object."""
    hint = "settings must be a JSON object: pass JSON.stringify({...})"
    if isinstance(value, Mapping):
        try:
            text = json.dumps(value, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            _refuse("bad_parameter", hint)
    elif isinstance(value, str):
        text = value
    else:
        _refuse("bad_parameter", f"{hint}, not {_kind(value)}")
    if len(text.encode()) > MAX_SETTINGS_BYTES:
        _refuse("bad_parameter", f"settings are over {MAX_SETTINGS_BYTES // 1024} KiB of JSON")
    try:
        parsed = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        _refuse("bad_parameter", f"{hint} (the text given is not JSON)")
    if not isinstance(parsed, dict):
        _refuse("bad_parameter", f"{hint}, not {_kind(parsed)}")
    return parsed


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _is_excluded_settings(node: exp.Expr) -> bool:
    return (
        isinstance(node, exp.Column)
        and node.name.lower() == "settings"
        and node.table.lower() == "excluded"
        and not node.args.get("db")
    )


def _is_column(node: exp.Expr, name: str, qualifiers: frozenset[str]) -> bool:
    return (
        isinstance(node, exp.Column)
        and node.name.lower() == name
        and (not node.table or node.table.lower() in qualifiers)
        and not node.args.get("db")
    )


# ---- users, api_keys -------------------------------------------------------------------------


def _profile_update(
    tree: exp.Update, reader: _Reader, qualifiers: frozenset[str], *, user_id: str
) -> ProfileWrite:
    _only_args(tree, "this", "expressions", "where")
    keys = _key_values(tree, reader, qualifiers, frozenset({"id"}), required=frozenset({"id"}))
    if keys["id"] != user_id:
        _refuse("not_own_row", "a plugin may only update its user's row: WHERE id = ctx.user_id")
    fields: dict[str, Any] = {}
    for assignment in tree.expressions:
        if not isinstance(assignment, exp.EQ) or not isinstance(assignment.this, exp.Column):
            _refuse("column_not_allowed", "write SET field = $n, ...")
        name = _column_name(assignment.this, qualifiers)
        if name in _NEVER_WRITTEN:
            _refuse("column_not_allowed", f"users.{name}: {_NEVER_WRITTEN[name]}")
        if name not in _PROFILE_TYPES:
            allowed = ", ".join(PROFILE_WRITABLE)
            _refuse(
                "column_not_allowed", f"users.{name} is not writable; plugins may set {allowed}"
            )
        if name in fields:
            _refuse("column_not_allowed", f"users.{name} is set twice")
        fields[name] = _profile_value(name, reader.value(assignment.expression))
    return ProfileWrite(fields)


def _profile_value(name: str, value: object) -> object:
    kind = _PROFILE_TYPES[name]
    if value is None:
        if name in PROFILE_TEXT_FIELDS:
            return ""  # NULL clears a text field, as "" does in the event
        _refuse("bad_parameter", f"users.{name} cannot be null")
    exact = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not exact:
        word = {str: "text", int: "an integer", bool: "a boolean"}.get(kind, kind.__name__)
        _refuse("bad_parameter", f"users.{name} takes {word}, not {_kind(value)}")
    return value


def _key_revoke(
    tree: exp.Delete, reader: _Reader, qualifiers: frozenset[str], *, user_id: str
) -> KeyRevoke:
    _only_args(tree, "this", "where")
    keys = _key_values(
        tree, reader, qualifiers, frozenset({"id", "user_id"}), required=frozenset({"id"})
    )
    if "user_id" in keys and keys["user_id"] != user_id:
        _refuse("not_own_row", "a plugin may only revoke its user's keys: user_id = ctx.user_id")
    key_id = keys["id"]
    if not isinstance(key_id, str) or not key_id:
        _refuse("bad_parameter", f"an API key's id is non-empty text, not {_kind(key_id)}")
    return KeyRevoke(key_id)


# ---- WHERE, columns, values ------------------------------------------------------------------


def _key_values(
    tree: exp.Expr,
    reader: _Reader,
    qualifiers: frozenset[str],
    keys: frozenset[str],
    *,
    required: frozenset[str],
) -> dict[str, object]:
    """``WHERE key = value AND ...``: each key column once, nothing else."""
    shape = " AND ".join(f"{key} = $n" for key in sorted(required))
    where = tree.args.get("where")
    if where is None:
        _refuse("where_not_allowed", f"a write names its one row: WHERE {shape}")
    conjuncts: list[exp.Expr] = []
    pending: list[exp.Expr] = [where.this]
    while pending:
        node = pending.pop()
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.And):
            pending.extend((node.expression, node.this))
        else:
            conjuncts.append(node)
    found: dict[str, object] = {}
    for node in conjuncts:
        if not isinstance(node, exp.EQ):
            _refuse("where_not_allowed", f"WHERE may only be {shape} (= joined by AND)")
        column, value = node.this, node.expression
        if not isinstance(column, exp.Column):
            column, value = value, column
        if not isinstance(column, exp.Column) or isinstance(value, exp.Column):
            _refuse("where_not_allowed", f"WHERE may only be {shape} (= joined by AND)")
        name = _column_name(column, qualifiers)
        if name not in keys:
            _refuse("where_not_allowed", f"WHERE may only name {', '.join(sorted(keys))}")
        if name in found:
            _refuse("where_not_allowed", f"{name} is named twice in WHERE")
        found[name] = reader.value(value)
    missing = required - found.keys()
    if missing:
        _refuse("where_not_allowed", f"a write names its one row: WHERE {shape}")
    return found


def _column_name(column: exp.Column, qualifiers: frozenset[str]) -> str:
    if column.args.get("db") or column.args.get("catalog"):
        _refuse("qualified_table", f"{column.sql(dialect='postgres')}: write table.column")
    if column.table and column.table.lower() not in qualifiers:
        _refuse("where_not_allowed", f"{column.sql(dialect='postgres')} names another table")
    if not isinstance(column.this, exp.Identifier):
        _refuse("column_not_allowed", f"{column.sql(dialect='postgres')} is not a column")
    return column.name.lower()


def _plain_name(node: exp.Expr) -> str:
    if not isinstance(node, exp.Identifier):
        _refuse("column_not_allowed", f"{node.sql(dialect='postgres')} is not a column name")
    return node.name.lower()


class _Reader:
    """The Python value of a ``$n`` parameter or a literal; anything else is refused."""

    def __init__(self, params: Sequence[object]) -> None:
        self._params = params

    def value(self, node: exp.Expr) -> object:
        readers: dict[type[exp.Expr], Callable[[Any], object]] = {
            exp.Parameter: self._parameter,
            exp.Literal: _literal,
            exp.Boolean: lambda boolean: bool(boolean.this),
            exp.Null: lambda _: None,
            exp.Cast: self._cast,
            exp.Neg: self._negative,
            exp.Paren: lambda paren: self.value(paren.this),
        }
        read = readers.get(type(node))
        if read is not None:
            return read(node)
        if isinstance(node, exp.Placeholder):
            _refuse(
                "bad_parameter", f"use $1, $2 ... placeholders, not {node.sql(dialect='postgres')}"
            )
        if isinstance(node, exp.Column):
            _refuse(
                "write_not_allowed", f"{node.sql(dialect='postgres')}: values are $n or literals"
            )
        if isinstance(node, exp.Func):
            _refuse(
                "function_not_allowed",
                f"{node.sql_name() if not isinstance(node, exp.Anonymous) else node.name}() in a"
                " write: values are $n parameters or literals",
            )
        _refuse("write_not_allowed", f"{node.sql(dialect='postgres')}: values are $n or literals")

    def _parameter(self, node: exp.Parameter) -> object:
        if not _PARAMETER_NAME.fullmatch(node.name):
            _refuse(
                "bad_parameter", f"use $1, $2 ... placeholders, not {node.sql(dialect='postgres')}"
            )
        index = int(node.name)
        if index > len(self._params):
            _refuse(
                "missing_parameter",
                f"${index} is used but only {len(self._params)} parameters given",
            )
        value = self._params[index - 1]
        scalar = value is None or isinstance(value, str | bool | int)
        if isinstance(value, float) and not math.isfinite(value):
            _refuse("bad_parameter", f"${index} is not a finite number")
        if not (scalar or isinstance(value, float | Mapping)):
            _refuse(
                "bad_parameter",
                f"${index} is {_kind(value)}: pass strings, numbers, booleans, null or JSON text",
            )
        return value

    def _cast(self, node: exp.Cast) -> object:
        _only_args(node, "this", "to")
        to = node.args.get("to")
        if not isinstance(to, exp.DataType) or to.this not in _TEXT_CASTS:
            _refuse("write_not_allowed", "only ::jsonb, ::json and ::text casts are allowed here")
        return self.value(node.this)

    def _negative(self, node: exp.Neg) -> object:
        value = self.value(node.this) if isinstance(node.this, exp.Literal) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            _refuse(
                "write_not_allowed", f"{node.sql(dialect='postgres')}: values are $n or literals"
            )
        return -value


def _literal(node: exp.Literal) -> object:
    if node.is_string:
        return node.this
    try:
        return int(node.this)
    except ValueError:
        return float(node.this)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping | dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def _refuse(code: str, message: str) -> NoReturn:
    raise PluginSqlRefused(code, message)
