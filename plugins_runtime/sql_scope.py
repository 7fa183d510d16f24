"""Plugin SQL, checked and confined to the calling user before anything runs. Pure: no I/O.

A plugin calls ``ctx.db.query(sql, params)`` with the seed's Postgres-flavoured SQL and ``$1``,
``$2`` ... placeholders. :func:`scope_query` parses it (sqlglot, Postgres dialect) and either
refuses it with a :class:`PluginSqlRefused` (a stable ``code`` and a message meant for the plugin's
author) or returns a :class:`ScopedQuery`: ClickHouse SQL in which

* every table reference, wherever it stands (subqueries, CTE bodies, joins, UNION branches), is
  replaced by the user-scoped subquery of :data:`plugins_runtime.relations.RELATIONS`, aliased
  with the name or alias the plugin wrote, so a query that forgets ``WHERE user_id = $1`` or names
  another user's id reads only the caller's rows (or none);
* ``$n`` became ``{pn:Type}``, a server-side parameter typed from the Python value, and the caller's
  id is ``{_uid:String}``, bound by the host: no value is ever pasted into the SQL text.

What is refused, and why, is the table of codes in :class:`PluginSqlRefused`. The checks are an
allow-list wherever one is practical (statements, FROM sources, functions); a deny-list could not
keep up with ClickHouse's table functions and introspection functions. The ClickHouse SQL we print
is parsed once more and its tables checked again, so a difference between how sqlglot reads the
plugin's SQL and how it prints ClickHouse SQL cannot smuggle in a table.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from plugins_runtime.relations import (
    BACKING_TABLES,
    RELATIONS,
    Relation,
    host_parameter,
)

__all__ = [
    "MAX_SQL_CHARS",
    "PluginSqlRefused",
    "ScopedQuery",
    "check_scoped",
    "parse_statement",
    "scope_query",
    "warm_up",
]

MAX_SQL_CHARS = 20_000

_WRITES_ALONE = (
    "a query only reads; a write is one INSERT, UPDATE or DELETE statement on its own, of your"
    " plugin_settings row, your profile (users) or your API keys (delete only)"
)


class PluginSqlRefused(Exception):
    """The plugin's SQL was refused before it reached the database.

    ``code`` is stable (plugins and tests match on it), ``message`` says what to change:

    ========================  ==========================================================
    ``syntax``                not parseable as (Postgres-flavoured) SQL
    ``empty``                 no statement at all
    ``too_long``              over :data:`MAX_SQL_CHARS` characters
    ``multiple_statements``   more than one statement
    ``write_not_allowed``     INSERT, UPDATE, DELETE (writes go through
                              :func:`plugins_runtime.sql_writes.plan_write`), MERGE,
                              SELECT INTO, COPY; a write inside a query (a CTE)
    ``statement_not_allowed`` DDL (CREATE, DROP, ALTER, TRUNCATE, RENAME, ATTACH ...),
                              SET, SHOW, EXPLAIN, GRANT: anything but a query
    ``table_function``        a function in FROM (``url()``, ``file()``, ``numbers()`` ...)
    ``system_table``          ``system.*``, ``information_schema.*``, ``pg_catalog.*``
    ``qualified_table``       any other ``database.table``
    ``unknown_table``         a table that is not on the allowed list
    ``cte_shadows_table``     a CTE named like an allowed table or one of ours (or our database)
    ``bad_identifier``        a CTE name that is not a plain word (``"codetrackr.x"``)
    ``recursive_cte``         ``WITH RECURSIVE``
    ``function_not_allowed``  a function not on the allowed list (``dictGet``, ``currentUser``)
    ``clause_not_allowed``    SETTINGS, FORMAT, INTO OUTFILE, LATERAL, UNNEST, TABLESAMPLE ...
    ``secret_column``         a secret column (an API key's hash, ...)
    ``bad_parameter``         a placeholder other than ``$n``, or a value of unsupported type
    ``missing_parameter``     ``$n`` beyond the parameters given
    ``not_own_row``           (writes) a row of another user or another plugin
    ``column_not_allowed``    (writes) a column that cannot be written, or a missing one
    ``where_not_allowed``     (writes) a WHERE that is not ``key = value`` joined by AND, or
                              that leaves out a key column
    ========================  ==========================================================
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ScopedQuery:
    """ClickHouse SQL ready to run, its bound parameters, and the host relations it reads."""

    sql: str
    parameters: Mapping[str, Any]
    host_relations: frozenset[str]


# sqlglot expression classes a plugin may call (by class name; sqlglot maps Postgres spellings
# onto them: now() is CurrentTimestamp, date_trunc is TimestampTrunc, x::int is Cast ...).
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ALLOWED_FUNCTION_CLASSES = _words(
    """
    Abs And AnyValue ApproxDistinct Array ArrayAgg ArrayContains Avg Case Cast Ceil Coalesce Collate
    Concat ConcatWs Count CountIf CurrentDate CurrentTimestamp Date DateAdd DateDiff DateSub
    DateTrunc DenseRank Div Exists Exp Extract FirstValue Floor Greatest GroupConcat If Initcap
    JSONBContains JSONBExtract JSONBExtractScalar JSONExtract JSONExtractScalar Lag LastValue
    Lead Least Left Length Ln Log Lower Max Median Min Nullif Or Pad PercentileCont
    PercentileDisc Pow Quantile Rank RegexpExtract RegexpILike RegexpLike Replace Reverse Right
    Round RowNumber SafeDivide Sign Split Sqrt Stddev StddevPop StddevSamp StrPosition StrToDate
    StrToTime Substring Sum TimestampTrunc TimeToStr TimeToUnix Trim TryCast TsOrDsToDate
    UnixToTime Upper Variance VariancePop Xor
    """
)

# Functions sqlglot does not know (it keeps them as Anonymous), by lower-cased name: the common
# ClickHouse and Postgres ones that only compute over their arguments.
_ALLOWED_FUNCTION_NAMES = _words(
    """
    any argmax argmin avgif countif cume_dist date_diff datediff empty formatdatetime has ifnull
    isnotnull isnull jsonextractbool jsonextractfloat jsonextractint jsonextractstring jsonhas
    lag lead maxif minif notempty nth_value ntile percent_rank quantile splitbychar sumif todate
    todayofweek tofloat64 tohour toint64 tostartofday tostartofhour tostartofmonth tostartofweek
    tostring tounixtimestamp toyyyymm toyyyymmdd uniq uniqexact
    """
)

_WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy)
# Anything that is not a query and not a write: DDL, SET, SHOW, GRANT, USE, unparsed commands...
_QUERY_NODES = (exp.Select, exp.SetOperation, exp.Subquery)
_FORBIDDEN_FROM = (exp.Lateral, exp.TableSample)
_TABLE_VALUED = (exp.Unnest, exp.TableFromRows)
_SYSTEM_SCHEMAS = frozenset({"system", "information_schema", "pg_catalog", "pg_toast"})
_FORBIDDEN_QUERY_ARGS = ("settings", "format", "into", "options", "locks", "connect", "prewhere")
_PARAMETER_NAME = re.compile(r"[1-9][0-9]{0,2}")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def scope_query(
    sql: str, parameters: Sequence[object] = (), *, database: str = "codetrackr"
) -> ScopedQuery:
    """Check the plugin's ``sql`` and confine it to the caller; raises :class:`PluginSqlRefused`.

    ``parameters`` are the plugin's ``$1``, ``$2`` ... values (str, int, float, bool or None).
    The caller's id is not an argument: the executor binds ``{_uid:String}`` itself.
    """
    tree = parse_statement(sql)
    _refuse_statement(tree)
    ctes = _check_ctes(tree, database)
    tables = [(table, _relation_of(table)) for table in tree.find_all(exp.Table)]
    used = {relation.name: relation for _, relation in tables if relation is not None}
    _check_functions(tree)  # before the rewrite: our scoped SELECTs use functions plugins may not
    for reading in used.values():
        _check_secret_columns(tree, reading)
    # Before the rewrite too: our scoped SELECTs carry the host's own placeholders.
    bound = _bind_parameters(tree, parameters)
    for table, target in tables:
        if target is None:
            continue  # a reference to a CTE in scope
        alias = table.args.get("alias") or exp.TableAlias()
        if not alias.name:
            alias.set("this", exp.to_identifier(table.name))
        table.replace(exp.Subquery(this=_scoped_select(target, database), alias=alias))
    printed = tree.sql(dialect="clickhouse")
    _recheck_printed(printed, database, ctes)
    hosts = frozenset(name for name, reading in used.items() if reading.source == "host")
    return ScopedQuery(printed, bound, hosts)


def warm_up(database: str = "codetrackr") -> None:
    """Pay sqlglot's cold start at start-up rather than on a plugin's first query.

    Importing sqlglot took ~100 ms and the first :func:`scope_query` ~20 ms more (dialects and
    our scoped SELECTs parsed once, then cached); a warm call takes 3 to 8 ms.
    """
    scope_query("SELECT 1 FROM " + ", ".join(RELATIONS), database=database)


# What can follow a placeholder glued to the previous token: ``,$2`` or ``($1``, as plugins
# write ``IN ($1,$2)``. sqlglot's tokenizer reads ``$1,$`` as the start of a dollar-quoted string,
# so outside literals, quoted names and comments a space goes before such a placeholder.
_GLUED_PARAMETER = re.compile(r"(?<=[,(=<>+\-*/|])(?=\$[0-9])")
_QUOTED = re.compile(
    r"'(?:[^']|'')*'?"  # a string literal ('' inside)
    r'|"(?:[^"]|"")*"?'  # a quoted name
    r"|--[^\n]*|/\*.*?(?:\*/|$)"  # comments
    r"|\$([A-Za-z_][A-Za-z0-9_]*|)\$.*?(?:\$\1\$|$)",  # a dollar-quoted string
    re.DOTALL,
)


def spaced_parameters(sql: str) -> str:
    """``sql`` with a space before every ``$n`` glued to an operator or a comma, outside string
    literals, quoted names, dollar-quoted strings and comments (which are left untouched)."""
    out, position = [], 0
    for quoted in _QUOTED.finditer(sql):
        out.append(_GLUED_PARAMETER.sub(" ", sql[position : quoted.start()]))
        out.append(quoted.group(0))
        position = quoted.end()
    out.append(_GLUED_PARAMETER.sub(" ", sql[position:]))
    return "".join(out)


def parse_statement(sql: str) -> exp.Expr:
    """The one statement of ``sql`` (Postgres dialect), or ``too_long``, ``syntax``, ``empty``,
    ``multiple_statements``. Shared with :mod:`plugins_runtime.sql_writes`."""
    if len(sql) > MAX_SQL_CHARS:
        raise PluginSqlRefused("too_long", f"the query is over {MAX_SQL_CHARS} characters")
    try:
        trees = [tree for tree in sqlglot.parse(spaced_parameters(sql), read="postgres") if tree]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unparseable"
        raise PluginSqlRefused("syntax", f"cannot parse the query: {first}") from exc
    if not trees:
        raise PluginSqlRefused("empty", "no statement given")
    if len(trees) > 1:
        raise PluginSqlRefused("multiple_statements", f"one statement per query, got {len(trees)}")
    return trees[0]


def _refuse_statement(tree: exp.Expr) -> None:
    if not isinstance(tree, _QUERY_NODES + _WRITE_NODES):
        verb = str(tree.this).upper() if isinstance(tree, exp.Command) else tree.key.upper()
        raise PluginSqlRefused(
            "statement_not_allowed", f"{verb} is not allowed: plugins may only run SELECT queries"
        )
    # Walk the whole tree: Postgres allows a DELETE inside a CTE (WITH x AS (DELETE ...)).
    for node in tree.walk():
        if isinstance(node, _WRITE_NODES):
            raise PluginSqlRefused("write_not_allowed", f"{node.key.upper()}: {_WRITES_ALONE}")
        if isinstance(node, exp.Query) and node.args.get("into") is not None:
            raise PluginSqlRefused("write_not_allowed", f"SELECT INTO: {_WRITES_ALONE}")
        if isinstance(node, exp.Command):
            raise PluginSqlRefused(
                "statement_not_allowed", f"{str(node.this).upper()} is not allowed inside a query"
            )
        if isinstance(node, _TABLE_VALUED):
            raise PluginSqlRefused(
                "table_function", f"{node.key.upper()} is not allowed: read the allowed tables"
            )
        if isinstance(node, exp.In):
            _refuse_table_in(node)
        if isinstance(node, exp.Column) and (node.args.get("db") or node.args.get("catalog")):
            raise PluginSqlRefused(
                "qualified_table", f"{node.sql(dialect='postgres')}: name columns as table.column"
            )
        if isinstance(node, _FORBIDDEN_FROM):
            raise PluginSqlRefused("clause_not_allowed", f"{node.key.upper()} is not allowed")
        if isinstance(node, exp.Query):
            for arg in _FORBIDDEN_QUERY_ARGS:
                if node.args.get(arg):
                    raise PluginSqlRefused("clause_not_allowed", f"{arg.upper()} is not allowed")


def _refuse_table_in(node: exp.In) -> None:
    """ClickHouse reads ``x IN name`` and ``x IN (name)`` as "x is in the TABLE name" when no
    column of that name is in scope: ``(a, b) IN codetrackr.leaderboard_members`` would test
    membership in a table no plugin may read. The right side must be a subquery or values."""
    field = node.args.get("field")
    values = node.expressions
    bare = field is not None or (len(values) == 1 and isinstance(values[0], exp.Column))
    if bare:
        raise PluginSqlRefused(
            "clause_not_allowed",
            "IN takes a subquery or a list of values: write IN (SELECT ...) or IN ($1, $2)",
        )


def _check_ctes(tree: exp.Expr, database: str) -> frozenset[str]:
    # ClickHouse looks a table name up among the CTEs first, even a qualified one: a CTE named
    # "codetrackr.heartbeat_deletions" would stand in for the tombstones our scoped SELECTs read
    # and bring deleted heartbeats back. So CTE names are plain words, none of ours.
    taken = set(RELATIONS) | BACKING_TABLES | {database.lower()}
    names: set[str] = set()
    for with_ in tree.find_all(exp.With):
        if with_.args.get("recursive"):
            raise PluginSqlRefused("recursive_cte", "WITH RECURSIVE is not allowed")
        for cte in with_.expressions:
            name = cte.alias_or_name
            if not _PLAIN_NAME.fullmatch(name):
                raise PluginSqlRefused(
                    "bad_identifier", f"name the CTE {name!r} with letters, digits and _ only"
                )
            if name.lower() in taken:
                raise PluginSqlRefused(
                    "cte_shadows_table", f"the CTE {name!r} has the name of a table"
                )
            names.add(name)
    return frozenset(names)


def _visible_ctes(node: exp.Expr) -> set[str]:
    """The CTE names a table reference at ``node`` can see, by SQL's lexical rules."""
    visible: set[str] = set()
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.With) and isinstance(child, exp.CTE):
            # Inside a CTE's body: only the CTEs declared before it in the same WITH.
            for cte in parent.expressions:
                if cte is child:
                    break
                visible.add(cte.alias_or_name)
        elif isinstance(parent, exp.Query):
            with_ = parent.args.get("with_") or parent.args.get("with")
            if with_ is not None and child is not with_:
                visible.update(cte.alias_or_name for cte in with_.expressions)
        child, parent = parent, parent.parent
    return visible


def _relation_of(table: exp.Table) -> Relation | None:
    """The allowed relation ``table`` names, None for a visible CTE; refuses everything else."""
    if not isinstance(table.this, exp.Identifier):
        name = table.this.sql_name() if isinstance(table.this, exp.Func) else table.this.key
        if isinstance(table.this, exp.Anonymous):
            name = table.this.name
        raise PluginSqlRefused(
            "table_function", f"table functions such as {name}() are not allowed in FROM"
        )
    schema = table.args.get("catalog") or table.args.get("db")
    if schema is not None:
        if table.db.lower() in _SYSTEM_SCHEMAS or table.catalog.lower() in _SYSTEM_SCHEMAS:
            raise PluginSqlRefused(
                "system_table", f"{table.sql(dialect='postgres')} is not readable by plugins"
            )
        raise PluginSqlRefused(
            "qualified_table",
            f"{table.sql(dialect='postgres')}: name tables without a database or schema",
        )
    extra = sorted(
        key for key, value in table.args.items() if value and key not in ("this", "alias", "only")
    )
    if extra:
        raise PluginSqlRefused("clause_not_allowed", f"{', '.join(extra)} on a table")
    # Exact case, as ClickHouse matches CTE names: a reference that misses its CTE would be
    # looked up as a table of the connection's current database.
    if table.name in _visible_ctes(table):
        return None
    relation = RELATIONS.get(table.name.lower())
    if relation is None:
        allowed = ", ".join(sorted(RELATIONS))
        raise PluginSqlRefused(
            "unknown_table", f"table {table.name!r} is not allowed; plugins may read {allowed}"
        )
    return relation


def _check_secret_columns(tree: exp.Expr, relation: Relation) -> None:
    for column in tree.find_all(exp.Column):
        if column.name.lower() in relation.secret_columns:
            raise PluginSqlRefused(
                "secret_column", f"{relation.name}.{column.name} is secret and never readable"
            )


def _check_functions(tree: exp.Expr) -> None:
    for func in tree.find_all(exp.Func):
        if isinstance(func, exp.Anonymous):
            allowed = func.name.lower() in _ALLOWED_FUNCTION_NAMES
            name = func.name
        else:
            allowed = type(func).__name__ in _ALLOWED_FUNCTION_CLASSES
            name = func.sql_name()
        if not allowed:
            raise PluginSqlRefused(
                "function_not_allowed", f"the function {name}() is not allowed in plugin queries"
            )


def _bind_parameters(tree: exp.Expr, values: Sequence[object]) -> dict[str, Any]:
    bound: dict[str, Any] = {}
    for node in list(tree.find_all(exp.Parameter, exp.Placeholder)):
        if isinstance(node, exp.Placeholder) or not _PARAMETER_NAME.fullmatch(node.name):
            raise PluginSqlRefused(
                "bad_parameter", f"use $1, $2 ... placeholders, not {node.sql(dialect='postgres')}"
            )
        index = int(node.name)
        if index > len(values):
            raise PluginSqlRefused(
                "missing_parameter", f"${index} is used but only {len(values)} parameters given"
            )
        value = values[index - 1]
        name = f"p{index}"
        node.replace(
            exp.Placeholder(
                this=name, kind=exp.DataType.build(_type_of(index, value), dialect="clickhouse")
            )
        )
        bound[name] = value
    return bound


def _type_of(index: int, value: object) -> str:
    # bool before int: True is an int too.
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise PluginSqlRefused("bad_parameter", f"${index} is outside the 64-bit range")
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, str):
        return "String"
    if value is None:
        return "Nullable(String)"
    raise PluginSqlRefused(
        "bad_parameter",
        f"${index} is a {type(value).__name__}: pass strings, numbers, booleans or null"
        " (JSON.stringify objects and arrays)",
    )


@functools.lru_cache(maxsize=64)
def _parsed_select(relation: Relation, database: str) -> exp.Expr:
    if relation.source == "clickhouse":
        sql = relation.select.replace("{db}", f"`{database}`")
    else:
        rows = (
            f"{{{host_parameter(relation.name)}:String}}" if relation.source == "host" else "'[]'"
        )
        tuple_type = ", ".join(f"{column.name} {column.type}" for column in relation.columns)
        fields = ", ".join(f"tupleElement(r, '{name}') AS {name}" for name in relation.column_names)
        array_type = f"Array(Tuple({tuple_type}))".replace("'", "''")
        sql = f"SELECT {fields} FROM (SELECT arrayJoin(JSONExtract({rows}, '{array_type}')) AS r)"
    return sqlglot.parse_one(sql, read="clickhouse")


def _scoped_select(relation: Relation, database: str) -> exp.Expr:
    return _parsed_select(relation, database).copy()


def _recheck_printed(printed: str, database: str, ctes: frozenset[str]) -> None:
    """Parse the ClickHouse SQL we are about to run and check its tables once more."""
    try:
        trees = sqlglot.parse(printed, read="clickhouse")
    except SqlglotError as exc:  # pragma: no cover - our own printing must parse back
        raise PluginSqlRefused("syntax", "the query could not be translated") from exc
    if len(trees) != 1 or trees[0] is None:  # pragma: no cover - see above
        raise PluginSqlRefused("syntax", "the query could not be translated")
    for table in trees[0].find_all(exp.Table):
        plain = isinstance(table.this, exp.Identifier) and not table.catalog
        ours = table.db == database and table.name in BACKING_TABLES
        cte = not table.db and table.name in ctes
        if not (plain and (ours or cte)):  # pragma: no cover - the checks above refused it
            raise PluginSqlRefused(
                "unknown_table", f"the translated query names {table.sql(dialect='clickhouse')}"
            )


def check_scoped(sql: str, database: str = "codetrackr") -> None:
    """Refuse ClickHouse SQL that is not one read-only query of our own tables.

    What the server runs for a hook process (:mod:`codetrackr.hook_channel`) has been scoped by
    :func:`scope_query` in that process; this second check, where the engine is, keeps a write, a
    table function or any other table from reaching it even if the sender were wrong. Raises
    :class:`PluginSqlRefused`.
    """
    if len(sql) > 4 * MAX_SQL_CHARS + 100_000:
        raise PluginSqlRefused("too_long", "the scoped query is too long")
    try:
        trees = sqlglot.parse(sql, read="clickhouse")
    except SqlglotError as exc:
        raise PluginSqlRefused("syntax", "the scoped query does not parse") from exc
    if len(trees) != 1 or trees[0] is None or not isinstance(trees[0], _QUERY_NODES):
        raise PluginSqlRefused("statement_not_allowed", "only one SELECT query may run")
    tree = trees[0]
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for node in tree.walk():
        if isinstance(node, (*_WRITE_NODES, exp.Command)) or (
            isinstance(node, exp.Query) and node.args.get("into") is not None
        ):
            raise PluginSqlRefused("write_not_allowed", "only one SELECT query may run")
        if isinstance(node, exp.Table):
            plain = isinstance(node.this, exp.Identifier) and not node.catalog
            ours = node.db == database and node.name in BACKING_TABLES
            cte = not node.db and node.name in ctes
            if not (plain and (ours or cte)):
                raise PluginSqlRefused(
                    "unknown_table", f"the scoped query names {node.sql(dialect='clickhouse')}"
                )
