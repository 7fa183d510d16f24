"""Read-only SQL for analysts: ClickHouse's HTTP interface at ``/clickhouse/`` (docs/analytics.md).

The part of ClickHouse's HTTP interface that SQL tools use, so ``clickhouse-connect``
(``proxy_path="/clickhouse"``), Grafana's ClickHouse data source, DBeaver and ``curl`` work
against ``make run`` as against a ClickHouse server:

* ``GET /clickhouse/ping`` answers ``Ok.``; ``GET|POST /clickhouse/`` runs the query given as the
  ``query`` parameter, then a newline and the request body. ``database`` (or
  ``X-ClickHouse-Database``) is where unqualified tables are looked up (the analytics views' by
  default); ``default_format`` (or ``X-ClickHouse-Format``) is the output format when the query
  has no ``FORMAT`` clause (``TabSeparated`` by default); ``param_<name>`` binds
  ``{name:Type}``. Other parameters (client settings, session ids) are ignored: analysts do not
  set settings.
* Credentials as ClickHouse takes them: HTTP Basic ``username:api_key``, the
  ``X-ClickHouse-User``/``X-ClickHouse-Key`` headers or ``user``/``password`` parameters, and
  our own ``X-API-Key``. The key may be read-only. The account must be named in
  ``CODETRACKR_ANALYSTS`` or ``CODETRACKR_ADMINS``, not suspended, and a given user name must be
  the key's owner's.
* Answers: the engine's bytes with ``X-ClickHouse-Format``, ``X-ClickHouse-Timezone``,
  ``X-ClickHouse-Query-Id``; errors as ClickHouse writes them (``Code: N. DB::Exception: ...``,
  plain text, ``X-ClickHouse-Exception-Code``), not in our JSON envelope, because that is what
  these clients read: 516 AUTHENTICATION_FAILED (401), 497 ACCESS_DENIED (403) for a refused
  account, table, database or function, 62 SYNTAX_ERROR (400), 164 READONLY (403) for a
  statement that writes, the engine's own for the rest.

What runs and under which limits: :mod:`api.rules.analyst_sql` and
:mod:`projections.clickhouse.analyst`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from accounts.credentials import hash_secret, normalize_api_key
from accounts.directory import AccountDirectory
from accounts.state import User
from api.rules.analyst_sql import AnalystSqlRefused, check_analyst_sql
from projections.clickhouse.analyst import AnalystQueries, AnalystQueryFailed

MAX_BODY_BYTES = 1024 * 1024
_DEFAULT_FORMAT = "TabSeparated"
_MEDIA = {
    "JSON": "application/json",
    "JSONCompact": "application/json",
    "JSONEachRow": "application/x-ndjson",
    "CSV": "text/csv",
    "CSVWithNames": "text/csv",
    "Parquet": "application/octet-stream",
    "Native": "application/octet-stream",
    "RowBinary": "application/octet-stream",
    "RowBinaryWithNamesAndTypes": "application/octet-stream",
    "Arrow": "application/octet-stream",
}
_STATUS = {62: 400, 164: 403, 396: 400, 159: 408, 241: 507, 516: 401, 497: 403, 60: 404, 81: 404}
_REFUSAL_CODES = {"syntax": 62, "empty": 62, "too_long": 62, "multiple_statements": 62}


class _Refused(Exception):
    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


def _error(code: int, name: str, message: str) -> Response:
    return PlainTextResponse(
        f"Code: {code}. DB::Exception: {message}. ({name}) (version codetrackr)\n",
        status_code=_STATUS.get(code, 500),
        headers={"X-ClickHouse-Exception-Code": str(code)},
    )


def _credentials(request: Request) -> tuple[str | None, str | None]:
    """(user name, key) from whichever place the client put them."""
    headers, params = request.headers, request.query_params
    if headers.get("x-api-key"):
        return None, headers["x-api-key"]
    if headers.get("x-clickhouse-key"):
        return headers.get("x-clickhouse-user"), headers["x-clickhouse-key"]
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        user, _, password = decoded.partition(":")
        return user or None, password or None
    if params.get("password"):
        return params.get("user"), params["password"]
    return None, None


def build_analyst_router(
    directory: AccountDirectory,
    queries: AnalystQueries,
    *,
    database: str,
    analytics_database: str,
    may_query: Callable[[User], bool],
) -> APIRouter:
    router = APIRouter(tags=["analytics"])
    allowed = frozenset({database, analytics_database})

    async def analyst(request: Request) -> User:
        name, raw = _credentials(request)
        key = normalize_api_key(raw) if raw else None
        found = await directory.key(hash_secret(key)) if key else None
        user = await directory.user(found.user_id) if found else None
        if user is None or (name not in (None, "", "default") and name != user.username):
            raise _Refused(516, "AUTHENTICATION_FAILED", "wrong user name or API key")
        if not may_query(user) or user.user_id in directory.state.suspended:
            raise _Refused(
                497,
                "ACCESS_DENIED",
                f"{user.username} may not query: only the accounts in CODETRACKR_ANALYSTS or "
                "CODETRACKR_ADMINS may",
            )
        return user

    async def answer(request: Request) -> Response:
        if request.method == "GET" and not request.query_params.get("query"):
            return PlainTextResponse("Ok.\n")  # a ClickHouse server's liveness answer
        try:
            await analyst(request)
            params = request.query_params
            body = b""
            if request.method == "POST":
                body = await request.body()
                if len(body) > MAX_BODY_BYTES:
                    raise _Refused(62, "SYNTAX_ERROR", "a query is at most 1 MiB")
            sql = "\n".join(part for part in (params.get("query", ""), body.decode()) if part)
            target = params.get("database") or request.headers.get("x-clickhouse-database")
            target = target or analytics_database
            if target not in allowed:
                raise _Refused(497, "ACCESS_DENIED", f"database {target} is not open to analysts")
            try:
                checked = check_analyst_sql(sql, allowed_databases=allowed)
            except AnalystSqlRefused as exc:
                code = _REFUSAL_CODES.get(exc.code, 497)
                raise _Refused(
                    code, "SYNTAX_ERROR" if code == 62 else "ACCESS_DENIED", exc.message
                ) from None
            fmt = params.get("default_format") or request.headers.get("x-clickhouse-format")
            fmt = None if checked.has_format else (fmt or _DEFAULT_FORMAT)
            bound = {
                k.removeprefix("param_"): v for k, v in params.items() if k.startswith("param_")
            }
            result = await run_in_threadpool(
                queries.run, checked.sql, database=target, fmt=fmt, parameters=bound
            )
        except _Refused as exc:
            return _error(exc.code, exc.name, exc.message)
        except AnalystQueryFailed as exc:
            if exc.name == "UNAVAILABLE":
                return _error(210, "NETWORK_ERROR", "the database is unavailable; retry")
            return PlainTextResponse(
                exc.message + "\n",
                status_code=_STATUS.get(exc.code, 500),
                headers={"X-ClickHouse-Exception-Code": str(exc.code)},
            )
        shown = fmt or "query's own"
        return Response(
            result,
            media_type=_MEDIA.get(fmt or "", "text/plain; charset=utf-8"),
            headers={
                "X-ClickHouse-Format": shown,
                "X-ClickHouse-Timezone": "UTC",
                "X-ClickHouse-Query-Id": str(uuid.uuid4()),
                "X-ClickHouse-Server-Display-Name": "codetrackr",
            },
        )

    async def ping() -> Response:
        return PlainTextResponse("Ok.\n")

    router.add_api_route("/clickhouse/ping", ping, methods=["GET", "HEAD"], include_in_schema=False)
    router.add_api_route("/clickhouse/", answer, methods=["GET", "POST"], include_in_schema=False)
    router.add_api_route("/clickhouse", answer, methods=["GET", "POST"], include_in_schema=False)
    return router
