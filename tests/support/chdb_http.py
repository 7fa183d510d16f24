"""The chdb HTTP stand-in: ClickHouse's HTTP interface, served from the real engine held by chdb.

What it is
    A TEST TOOL. Production reaches a ClickHouse *server* over HTTP with clickhouse-connect's HTTP
    client, but no modern ClickHouse server can be installed here, and chdb (the real ClickHouse
    26.9 engine, in-process) lets only one process hold a data directory. This module is a small
    HTTP server process that holds one chdb data directory and speaks the part of ClickHouse's HTTP
    interface that clickhouse-connect 1.12 uses, so several processes (worker, api, tests) can share
    one engine the way they would share a server. Every statement runs on the engine itself:
    parsing, query parameters, settings, output and input formats, type conversions and error codes
    are ClickHouse's own. The Python here only does what the server's HTTP layer does around them.
    Every connection starts from the engine's defaults: the few settings chdb changes for embedded
    use (``implicit_select``, ``allow_introspection_functions``, ...) are reset, as on a server.

What it is not
    Not ClickHouse server, and never to be presented as one: one user, no grants, quotas, roles,
    TLS, native TCP protocol, clusters, external data (``multipart`` file parts), progress headers
    (every answer is buffered whole, as with ``wait_end_of_query=1``), server-side cancellation,
    or ClickHouse's internal ``compress``/``decompress`` block format, ``http_max_uri_size``,
    ``X-ClickHouse-Summary``'s ``result_rows``. It is not tuned for load: each request body and
    each result is held in memory. Where chdb's own entry points differ from the server's (an
    INSERT's data reaches the input format through ``send_insert``, not the request stream), the
    engine's behaviour there is what you get.

The implemented subset (modelled on ``src/Server/HTTPHandler.cpp``)
    * ``GET /ping`` and ``GET /`` without a query answer ``Ok.\\n``; any other path is a 404.
    * The query is the ``query`` URL parameter, a newline and the request body, or, for a
      ``multipart/form-data`` POST (clickhouse-connect's form encoding of long parameters), the
      ``query`` form field(s). ``param_<name>`` URL or form fields bind ``{name:Type}`` query
      parameters (the first value wins). ``database`` and ``default_format`` (or the
      ``X-ClickHouse-Database`` and ``X-ClickHouse-Format`` headers) pick the current database and
      the output format of statements without a ``FORMAT`` clause (default ``TabSeparated``).
    * Every other URL parameter is a setting, applied with ``SET`` so the engine validates it
      (unknown settings fail with ``UNKNOWN_SETTING``); the server's reserved parameters
      (``query_id``, ``session_id``, ``wait_end_of_query``, ``client_protocol_version``, ...) are
      not. ``client_protocol_version`` is ignored: chdb's Native output carries no ``BlockInfo``,
      so clickhouse-connect's probe settles on protocol version 0, as behind a proxy that strips
      that parameter. A GET request is read-only (``readonly=2``), except inside a session.
    * One statement per request: a second statement is a ``SYNTAX_ERROR`` ("Multi-statements are
      not allowed"), an empty query is a ``SYNTAX_ERROR``, ``INTO OUTFILE`` is refused.
    * The server's HTML form limits, read from the engine's settings: ``http_max_fields``,
      ``http_max_field_name_size`` and ``http_max_field_value_size`` (128 KiB) per URL parameter
      (before percent-decoding) and per form field; beyond them the answer is the server's
      ``Poco::Exception ... HTML Form Exception: Field value too long`` (``POCO_EXCEPTION``, 1000).
    * ``INSERT ... FORMAT <fmt>`` and ``INSERT ... VALUES``: the data after the statement (the
      rest of the request, split where the server's parser splits it) is fed to the engine's own
      input format through ``chdb.Connection.send_insert``.
    * Request bodies may be compressed (``Content-Encoding``: zstd, lz4 frames, gzip, deflate, xz,
      bz2, and br if ``brotli`` is installed). Responses are compressed when the effective
      ``enable_http_compression`` setting is on and ``Accept-Encoding`` names a method, preferring
      the methods in the server's order (zstd, br, lz4, gzip, deflate, xz, bz2).
    * Sessions (``session_id``, ``session_timeout`` up to 3600 s, ``session_check``,
      ``close_session``): one chdb connection per session keeps ``SET``, ``USE`` and temporary
      tables; a session in use by another request is ``SESSION_IS_LOCKED``. Per-request settings
      and ``database`` are restored after each request, as they only apply to the query context.
    * Authentication: HTTP Basic, ``X-ClickHouse-User``/``X-ClickHouse-Key`` headers, or
      ``user``/``password`` parameters, checked against the one configured user; mixing schemes or
      a wrong user or password is ``AUTHENTICATION_FAILED`` (516, HTTP 403 as on the server).
    * Answers: ``X-ClickHouse-Query-Id``, ``X-ClickHouse-Summary`` (the counters chdb reports),
      ``X-ClickHouse-Format`` and ``X-ClickHouse-Timezone`` for statements that return a result,
      ``X-ClickHouse-Server-Display-Name: chdb-http-standin``. Errors are ``Code: N.
      DB::Exception: ... (NAME) (version V)`` with ``X-ClickHouse-Exception-Code`` and the HTTP
      status the server maps that code to (400, 403, 404, 500, 503, ...).

Run it as ``python -m tests.support.chdb_http --port P --data-dir D [--user U --password W]``, or
from Python with :class:`ChdbHttpProcess`, which also pauses (SIGSTOP), resumes and kills it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bz2
import gzip
import json
import logging
import lzma
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import quote, unquote_plus

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = [
    "DISPLAY_NAME",
    "ChdbHttpHandler",
    "ChdbHttpProcess",
    "ClickHouseError",
    "HttpAnswer",
    "HttpRequest",
    "build_app",
    "main",
    "serve",
]

logger = logging.getLogger(__name__)

#: Sent as ``X-ClickHouse-Server-Display-Name`` so nobody mistakes the stand-in for a server.
DISPLAY_NAME: Final = "chdb-http-standin"
PASSWORD_ENV: Final = "CHDB_HTTP_STANDIN_PASSWORD"

_DEFAULT_SESSION_TIMEOUT_S: Final = 60
_MAX_SESSION_TIMEOUT_S: Final = 3600
_INSERT_CHUNK: Final = 1 << 20
_REPO_ROOT: Final = Path(__file__).resolve().parents[2]

# HTTP parameters the server consumes itself; everything else but param_* is a setting.
_RESERVED_PARAMS: Final = frozenset(
    {
        "query",
        "database",
        "default_format",
        "compress",
        "decompress",
        "user",
        "password",
        "quota_key",
        "query_id",
        "stacktrace",
        "buffer_size",
        "wait_end_of_query",
        "session_id",
        "session_timeout",
        "session_check",
        "client_protocol_version",
        "close_session",
        "role",
    }
)
# With multipart bodies the server also skips external-table descriptions.
_EXTERNAL_DATA_SUFFIXES: Final = ("_format", "_types", "_structure")
# chdb output "formats" that are Python conveniences, not ClickHouse formats.
_CHDB_ONLY_FORMATS: Final = frozenset({"dataframe", "arrowtable", "datastore"})
# Leading keywords of statements whose answer is a result set (the server then sends
# X-ClickHouse-Format and X-ClickHouse-Timezone).
_RESULT_KEYWORDS: Final = frozenset(
    {"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXISTS", "EXPLAIN", "CHECK", "KILL", "WATCH"}
    | {"FROM"}
)
_SETTING_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# exceptionCodeToHTTPStatus() of the server, by error name; every other code is a 500.
_HTTP_STATUS_BY_ERROR: Final[dict[str, int]] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        (
            "UNKNOWN_USER",
            "WRONG_PASSWORD",
            "AUTHENTICATION_FAILED",
            "SET_NON_GRANTED_ROLE",
            "ACCESS_DENIED",
        ),
        403,
    ),
    **dict.fromkeys(
        (
            "BAD_ARGUMENTS",
            "CANNOT_COMPILE_REGEXP",
            "CANNOT_PARSE_TEXT",
            "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING",
            "CANNOT_PARSE_DATE",
            "CANNOT_PARSE_DATETIME",
            "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
            "CANNOT_PARSE_IPV4",
            "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "CANNOT_PARSE_UUID",
            "DUPLICATE_COLUMN",
            "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST",
            "UNKNOWN_TYPE_OF_AST_NODE",
            "THERE_IS_NO_COLUMN",
            "TOO_DEEP_AST",
            "TOO_BIG_AST",
            "UNEXPECTED_AST_STRUCTURE",
            "SYNTAX_ERROR",
            "INCORRECT_DATA",
            "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ),
        400,
    ),
    **dict.fromkeys(
        (
            "UNKNOWN_TABLE",
            "UNKNOWN_FUNCTION",
            "UNKNOWN_IDENTIFIER",
            "UNKNOWN_TYPE",
            "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE",
            "UNKNOWN_SETTING",
            "UNKNOWN_DIRECTION_OF_SORTING",
            "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT",
            "UNKNOWN_DATABASE_ENGINE",
            "UNKNOWN_TYPE_OF_QUERY",
            "UNKNOWN_ROLE",
        ),
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "CANNOT_SCHEDULE_TASK": 503,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}


class ClickHouseError(Exception):
    """An error answered the way ClickHouse answers it: an error name (``SYNTAX_ERROR``) or a
    numeric code taken from the engine, and the message text without the ``Code:`` frame.

    ``html_form=True`` is the server's HTML form parser failing (a ``Poco::Exception``, answered as
    ``POCO_EXCEPTION``), e.g. a parameter value longer than ``http_max_field_value_size``.
    """

    def __init__(
        self, name: str | None, message: str, *, code: int | None = None, html_form: bool = False
    ) -> None:
        super().__init__(message)
        self.name = "POCO_EXCEPTION" if html_form else name
        self.message = message
        self.code = code
        self.html_form = html_form


# ---- engine ---------------------------------------------------------------------------------

_CODE_FRAME = re.compile(r"Code: (\d+)\. DB::Exception: ")
_NAME_TRAILER = re.compile(r"(?:\.? \([A-Z][A-Z0-9_]*\)(?: \(version [^()]*\))?)+\s*$")


def _engine_error(exc: Exception) -> ClickHouseError:
    """The engine's own error, unwrapped from chdb's (sometimes nested) message frames."""
    text = str(exc)
    frame = _CODE_FRAME.search(text)
    if frame is None:
        return ClickHouseError("STD_EXCEPTION", text.strip() or type(exc).__name__)
    core = text[frame.end() :]
    while (inner := _CODE_FRAME.match(core)) is not None:
        core = core[inner.end() :]
    return ClickHouseError(None, _NAME_TRAILER.sub("", core.strip()), code=int(frame.group(1)))


@dataclass(frozen=True, slots=True)
class _FormLimits:
    """``http_max_fields``, ``http_max_field_name_size`` and ``http_max_field_value_size``: the
    server's HTML form parser applies them to URL parameters (before percent-decoding) and to
    ``multipart/form-data`` fields alike."""

    max_fields: int
    max_name_size: int
    max_value_size: int

    def check(self, count: int, name: str | bytes, value: str | bytes) -> None:
        if self.max_fields and count >= self.max_fields:
            raise ClickHouseError(None, "Too many form fields", html_form=True)
        if len(name) > self.max_name_size:
            raise ClickHouseError(None, "Field name too long", html_form=True)
        if len(value) > self.max_value_size:
            raise ClickHouseError(None, "Field value too long", html_form=True)


class _Engine:
    """The chdb engine of this process: one data directory, held open for the process lifetime
    by an anchor connection, plus facts read from the engine once (version, time zone, the
    error-code table)."""

    def __init__(self, data_dir: str) -> None:
        import chdb  # the 180 MB engine loads only in the stand-in process

        self._chdb: Any = chdb
        self._path = data_dir
        self._anchor: Any = self._chdb.connect(data_dir)
        first = self._anchor.query("SELECT version(), timezone()", "TabSeparated")
        version, timezone = bytes(first.bytes()).decode().rstrip("\n").split("\t")
        self.version: str = version
        self.timezone: str = timezone
        table = self._anchor.query(
            "SELECT number, errorCodeToName(number) FROM numbers(4000)"
            " WHERE errorCodeToName(number) != ''",
            "TabSeparated",
        )
        self._codes: dict[str, int] = {}
        self._names: dict[int, str] = {}
        for line in table.bytes().decode().splitlines():
            number, name = line.split("\t")
            self._codes[name] = int(number)
            self._names[int(number)] = name
        # The HTTP layer's limits are settings of the user profile: the engine's defaults here.
        limits = self._anchor.query(
            "SELECT getSetting('http_max_fields'), getSetting('http_max_field_name_size'),"
            " getSetting('http_max_field_value_size'), getSetting('enable_http_compression')",
            "TabSeparated",
        )
        fields, name_size, value_size, compression = limits.bytes().decode().split()
        self.form_limits = _FormLimits(int(fields), int(name_size), int(value_size))
        self.http_compression_default = _truthy(compression)
        formats = self._anchor.query("SELECT name FROM system.formats", "TabSeparated")
        self.formats = frozenset(formats.bytes().decode().lower().split())
        # chdb changes a few defaults for embedded use (implicit_select=1 runs `1 + 1` without
        # SELECT, allow_introspection_functions=1, ...); a server keeps the engine's defaults.
        overrides = self._anchor.query(
            "SELECT name FROM system.settings WHERE changed AND name != 'database'",
            "TabSeparated",
        )
        self._resets = [f"SET {name} = DEFAULT" for name in overrides.bytes().decode().split()]

    def connect(self) -> Any:
        """A fresh connection with the server's defaults: its own settings, current database and
        temporary tables, like a server's query (or session) context."""
        connection = self._chdb.connect(self._path)
        try:
            for statement in self._resets:
                connection.query(statement, "TabSeparated")
        except BaseException:
            connection.close()
            raise
        return connection

    def code_of(self, name: str) -> int:
        return self._codes.get(name, self._codes["STD_EXCEPTION"])

    def name_of(self, code: int) -> str:
        return self._names.get(code, "UNKNOWN_EXCEPTION")

    def close(self) -> None:
        self._anchor.close()


# ---- SQL scanning -----------------------------------------------------------------------------
#
# Just enough of ClickHouse's lexer to do what the server's HTTP layer relies on its parser for:
# find the end of the one statement, where INSERT data begins, the leading keyword and an
# explicit FORMAT clause. The statement itself is always parsed again by the engine.

_SPACE: Final = frozenset(b" \t\n\r\f\v")
_LETTERS: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
_WORD_START: Final = frozenset(_LETTERS) | frozenset(range(0x80, 0x100))  # UTF-8 bytes too
_WORD_CHARS: Final = _WORD_START | frozenset(b"0123456789")
_NUMBER_CHARS: Final = _WORD_CHARS | frozenset(b".")
_HEREDOC: Final = re.compile(rb"\$([A-Za-z0-9_]*)\$")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word, number, literal, identifier, open, close, semicolon, other
    start: int
    end: int


def _skip_block_comment(sql: bytes, start: int) -> int:
    depth, i, n = 0, start, len(sql)
    while i < n:
        if sql.startswith(b"/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith(b"*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _skip_quoted(sql: bytes, start: int) -> int:
    quote_char, i, n = sql[start], start + 1, len(sql)
    while i < n:
        if sql[i] == 0x5C:  # backslash escape
            i += 2
        elif sql[i] == quote_char:
            if i + 1 < n and sql[i + 1] == quote_char:  # doubled quote
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def _tokens(sql: bytes) -> Iterator[_Token]:
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in _SPACE:
            i += 1
        elif sql.startswith(b"--", i) or (c == 0x23 and sql[i + 1 : i + 2] in (b" ", b"!")):
            newline = sql.find(b"\n", i)
            i = n if newline < 0 else newline + 1
        elif sql.startswith(b"/*", i):
            i = _skip_block_comment(sql, i)
        elif c in b"'\"`":
            end = _skip_quoted(sql, i)
            yield _Token("literal" if c == 0x27 else "identifier", i, end)
            i = end
        elif c == 0x24 and (heredoc := _HEREDOC.match(sql, i)) is not None:
            close = sql.find(heredoc.group(0), heredoc.end())
            end = n if close < 0 else close + len(heredoc.group(0))
            yield _Token("literal", i, end)
            i = end
        elif c in _WORD_START or c in b"0123456789":
            chars = _WORD_CHARS if c in _WORD_START else _NUMBER_CHARS
            end = i + 1
            while end < n and sql[end] in chars:
                end += 1
            yield _Token("word" if c in _WORD_START else "number", i, end)
            i = end
        else:
            kind = "semicolon" if c == 0x3B else "open" if c in b"([{" else "other"
            kind = "close" if c in b")]}" else kind
            yield _Token(kind, i, i + 1)
            i += 1


@dataclass(frozen=True, slots=True)
class _Plan:
    """One request's statement, as the server's HTTP layer sees it."""

    sql: bytes  # the statement; for an INSERT with data, the statement before FORMAT/VALUES
    keyword: str  # the leading keyword, upper case
    insert_format: str | None = None  # input format of the data that follows the statement
    insert_data: bytes = b""
    output_format: str | None = None  # an explicit FORMAT clause of a non-INSERT statement

    @property
    def returns_result(self) -> bool:
        return self.insert_format is None and self.keyword in _RESULT_KEYWORDS


def _word(sql: bytes, token: _Token) -> str:
    return sql[token.start : token.end].decode("utf-8", "replace").upper()


def _insert_data_start(sql: bytes, after_format_name: int) -> int:
    """Where INSERT ... FORMAT data starts: ParserInsertQuery's rule."""
    i, n = after_format_name, len(sql)
    if sql[i : i + 1] == b";":
        raise ClickHouseError(
            "SYNTAX_ERROR",
            "You have excessive ';' symbol before data for INSERT. Note that there is no ';'"
            " just after format name, you need to put at least one whitespace symbol before"
            " the data",
        )
    while i < n and sql[i] in b" \t\f":
        i += 1
    if sql[i : i + 1] == b"\r":
        i += 1
    if sql[i : i + 1] == b"\n":
        i += 1
    return i


def _plan(sql: bytes) -> _Plan:
    """Split a request's query into the one statement (and INSERT data) the engine must run."""
    tokens = _tokens(sql)
    depth = 0
    keyword: str | None = None
    insert_select = False
    previous = ""
    output_format: str | None = None
    for token in tokens:
        if token.kind == "open":
            depth += 1
            continue
        if token.kind == "close":
            depth = max(0, depth - 1)
            continue
        if keyword is None:
            if token.kind == "semicolon":
                break  # nothing before the first ';'
            keyword = _word(sql, token) if token.kind == "word" else ""
        if token.kind == "semicolon":
            if next(tokens, None) is not None:
                rest = sql[token.start : token.start + 100].decode("utf-8", "replace")
                raise ClickHouseError(
                    "SYNTAX_ERROR",
                    "Syntax error (Multi-statements are not allowed): failed at position"
                    f" {token.start + 1} (end of query): {rest}",
                )
            return _Plan(sql[: token.start], keyword, output_format=output_format)
        if depth > 0:
            continue
        if token.kind != "word":
            previous = "." if sql[token.start : token.end] == b"." else ""
            continue
        word = _word(sql, token)
        if word == "OUTFILE" and previous == "INTO" and keyword != "INSERT":
            raise ClickHouseError("INTO_OUTFILE_NOT_ALLOWED", "INTO OUTFILE is not allowed")
        # A word after '.', INTO, TABLE or FUNCTION names something (`INSERT INTO db.values`).
        is_name = previous == "." or previous in ("INTO", "TABLE", "FUNCTION")
        previous = word
        if is_name:
            continue
        if keyword == "INSERT" and not insert_select:
            if word == "FORMAT":
                name = next(tokens, None)
                if name is None or name.kind != "word":
                    return _Plan(sql, keyword)  # malformed: let the engine report it
                start = _insert_data_start(sql, name.end)
                fmt = sql[name.start : name.end].decode()
                return _Plan(sql[: token.start].rstrip(), keyword, fmt, sql[start:])
            if word == "VALUES":
                head = sql[: token.start].rstrip()
                return _Plan(head, keyword, "Values", sql[token.end :].lstrip())
            insert_select = word in ("SELECT", "WITH")
        if word == "FORMAT" and keyword != "INSERT":
            name = next(tokens, None)
            if name is not None and name.kind == "word":
                output_format = sql[name.start : name.end].decode()  # checked by the handler
            previous = ""
    if keyword is None:
        raise ClickHouseError("SYNTAX_ERROR", "Empty query")
    return _Plan(sql, keyword, output_format=output_format)


# ---- HTTP bodies ------------------------------------------------------------------------------

# The server's preference order (chooseHTTPCompressionMethod), limited to what Python can do here.
_RESPONSE_CODINGS: Final = ("zstd", "br", "lz4", "gzip", "deflate", "xz", "bz2")


def _brotli() -> Any | None:
    try:
        import brotli  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return brotli


def _zstd() -> Any:
    if sys.version_info >= (3, 14):
        from compression import zstd  # type: ignore[import-not-found, unused-ignore]
    else:
        from backports import zstd  # type: ignore[import-not-found, no-redef, unused-ignore]
    return zstd


def _lz4_frames(data: bytes) -> bytes:
    """Decompress concatenated LZ4 frames (clickhouse-connect sends one frame per block)."""
    import lz4.frame  # type: ignore[import-untyped, unused-ignore]

    parts: list[bytes] = []
    rest = data
    while rest:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        parts.append(decompressor.decompress(rest))
        if not decompressor.eof:
            raise ValueError("truncated LZ4 frame")
        rest = decompressor.unused_data or b""
    return b"".join(parts)


def _decode_body(data: bytes, content_encoding: str) -> bytes:
    method = content_encoding.strip().lower()
    decoders: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.decompress,
        "deflate": zlib.decompress,
        "xz": lzma.decompress,
        "bz2": bz2.decompress,
        "zstd": lambda body: bytes(_zstd().decompress(body)),
        "lz4": _lz4_frames,
    }
    if (brotli := _brotli()) is not None:
        decoders["br"] = brotli.decompress
    if method in ("", "none", "identity"):
        return data
    decoder = decoders.get(method)
    if decoder is None:
        raise ClickHouseError(
            "NOT_IMPLEMENTED",
            f"Unknown compression method '{content_encoding}'. The chdb HTTP stand-in supports"
            f" {', '.join(sorted(decoders))}",
        )
    try:
        return decoder(data)
    except Exception as exc:  # any codec's "corrupt input"
        raise ClickHouseError(
            "CANNOT_DECOMPRESS", f"Cannot decompress {method} request body: {exc}"
        ) from exc


def _response_coding(accept_encoding: str) -> str | None:
    available = {"zstd", "lz4", "gzip", "deflate", "xz", "bz2"}
    if _brotli() is not None:
        available.add("br")
    for method in _RESPONSE_CODINGS:
        if method in accept_encoding and method in available:
            return method
    return None


def _encode_body(data: bytes, method: str, level: int) -> bytes:
    if method == "zstd":
        return bytes(_zstd().compress(data, level))
    if method == "lz4":
        import lz4.frame  # type: ignore[import-untyped, unused-ignore]

        return bytes(lz4.frame.compress(data))
    if method == "gzip":
        return gzip.compress(data, compresslevel=max(1, min(level, 9)))
    if method == "deflate":
        return zlib.compress(data, max(1, min(level, 9)))
    if method == "xz":
        return lzma.compress(data)
    if method == "bz2":
        return bz2.compress(data)
    brotli = _brotli()
    if method != "br" or brotli is None:
        raise ValueError(f"cannot encode {method}")
    return bytes(brotli.compress(data))


@dataclass(frozen=True, slots=True)
class _FormField:
    name: str
    filename: str | None
    value: bytes


_DISPOSITION_PARAM: Final = re.compile(r';\s*(name|filename)="((?:[^"\\]|\\.)*)"', re.IGNORECASE)


def _form_fields(body: bytes, content_type: str) -> list[_FormField]:
    """The parts of a ``multipart/form-data`` body (RFC 7578), as clickhouse-connect sends them."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        raise ClickHouseError("BAD_ARGUMENTS", "multipart/form-data without a boundary")
    delimiter = b"\r\n--" + boundary.group(1).encode()
    fields: list[_FormField] = []
    for part in (b"\r\n" + body).split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        params: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                params = {k.lower(): v for k, v in _DISPOSITION_PARAM.findall(line)}
        if "name" in params:
            fields.append(_FormField(params["name"], params.get("filename"), value))
    return fields


# ---- requests, answers, sessions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as the HTTP layer received it (header names lower case)."""

    method: str
    path: str
    query_string: str  # raw, still percent-encoded
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class _Params:
    """URL parameters in order; :meth:`get` returns the first value, as the server's form does."""

    items: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "") -> str:
        return next((value for key, value in self.items if key == name), default)

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.items)


def _url_params(query_string: str, limits: _FormLimits) -> _Params:
    """Split a query string like the server's HTMLForm::readQuery, limits included."""
    items: list[tuple[str, str]] = []
    if not query_string:
        return _Params(())
    for count, piece in enumerate(query_string.split("&")):
        raw_name, _, raw_value = piece.partition("=")
        limits.check(count, raw_name, raw_value)
        items.append((unquote_plus(raw_name), unquote_plus(raw_value)))
    return _Params(tuple(items))


@dataclass(slots=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Session:
    connection: Any
    timeout_s: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    expires_at: float = 0.0


class _Sessions:
    """HTTP sessions: a chdb connection per ``session_id``, one request at a time each."""

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def acquire(self, session_id: str, timeout_s: int, check: bool) -> _Session:
        with self._lock:
            self._close_expired(time.monotonic())
            session = self._sessions.get(session_id)
            if session is None:
                if check:
                    raise ClickHouseError("SESSION_NOT_FOUND", f"Session {session_id} not found")
                session = _Session(self._engine.connect(), timeout_s)
                self._sessions[session_id] = session
            if not session.lock.acquire(blocking=False):
                raise ClickHouseError(
                    "SESSION_IS_LOCKED", f"Session {session_id} is locked by a concurrent client"
                )
            session.timeout_s = timeout_s
            return session

    def release(self, session_id: str, session: _Session, close: bool) -> None:
        session.expires_at = time.monotonic() + session.timeout_s
        if close:
            with self._lock:
                self._sessions.pop(session_id, None)
            session.connection.close()
        session.lock.release()

    def _close_expired(self, now: float) -> None:
        for session_id, session in list(self._sessions.items()):
            if session.expires_at < now and session.lock.acquire(blocking=False):
                del self._sessions[session_id]
                session.connection.close()
                session.lock.release()

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            with session.lock:
                session.connection.close()


@dataclass(slots=True)
class _Context:
    """What the request asks of the engine besides its statement."""

    database: str = ""
    default_format: str = ""
    settings: list[tuple[str, str]] = field(default_factory=list)
    query_params: dict[str, str] = field(default_factory=dict)
    readonly: bool = False


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_identifier(value: str) -> str:
    return "`" + value.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _content_type(fmt: str) -> str:
    name = fmt.lower()
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        return "text/csv; charset=UTF-8"
    if name.startswith("json") or name == "ndjson":
        return "application/json; charset=UTF-8"
    if name.startswith(("native", "rowbinary", "arrow", "parquet", "orc", "avro", "protobuf")):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


class ChdbHttpHandler:
    """Answers HTTP requests like ClickHouse's HTTP handler, running every statement on chdb.

    Thread-safe: each request runs on its own chdb connection (a fresh one, or its session's),
    which is how chdb wants concurrent use; the engine runs such connections concurrently.
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, user: str, password: str) -> None:
        self._engine = _Engine(os.fspath(data_dir))
        self._user = user
        self._password = password.encode()
        self._sessions = _Sessions(self._engine)

    @property
    def version(self) -> str:
        return self._engine.version

    def close(self) -> None:
        self._sessions.close()
        self._engine.close()

    # ---- entry point --------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpAnswer:
        """Answer one request; never raises for anything the client sent."""
        if request.path == "/ping":
            return HttpAnswer(200, {"Content-Type": "text/html; charset=UTF-8"}, b"Ok.\n")
        if request.path != "/":
            text = f"There is no handle {request.path}\n\nUse / or /ping for health checks.\n"
            return HttpAnswer(404, {"Content-Type": "text/plain; charset=UTF-8"}, text.encode())
        error_coding: str | None = None  # errors before authentication are never compressed
        try:
            params = _url_params(request.query_string, self._engine.form_limits)
            if request.method in ("GET", "HEAD") and "query" not in params and not request.body:
                return HttpAnswer(200, {"Content-Type": "text/html; charset=UTF-8"}, b"Ok.\n")
            self._authenticate(request, params)
            coding = _response_coding(request.headers.get("accept-encoding", ""))
            enabled = params.get("enable_http_compression") or None
            if self._engine.http_compression_default if enabled is None else _truthy(enabled):
                error_coding = coding
            return self._process(request, params, coding)
        except ClickHouseError as exc:
            return self._error_answer(exc, error_coding)
        except Exception as exc:
            logger.exception("chdb HTTP stand-in failed on a request")
            return self._error_answer(ClickHouseError("STD_EXCEPTION", repr(exc)), error_coding)

    # ---- steps --------------------------------------------------------------------------------

    def _authenticate(self, request: HttpRequest, params: _Params) -> None:
        headers = request.headers
        header_user = headers.get("x-clickhouse-user", "")
        header_key = headers.get("x-clickhouse-key", "")
        certificate = headers.get("x-clickhouse-ssl-certificate-auth", "") == "on"
        has_header_auth = bool(header_user or header_key or certificate)
        authorization = headers.get("authorization", "")
        has_param_auth = any(name in params for name in ("user", "password", "quota_key"))
        if has_header_auth:
            if authorization or has_param_auth:
                raise ClickHouseError(
                    "AUTHENTICATION_FAILED",
                    "Invalid authentication: it is not allowed to use X-ClickHouse HTTP headers"
                    " and other authentication methods simultaneously",
                )
            if certificate:
                raise ClickHouseError(
                    "SUPPORT_IS_DISABLED",
                    "SSL certificate authentication is not supported by the chdb HTTP stand-in",
                )
            user, password = header_user or "default", header_key
        elif authorization:
            if has_param_auth:
                raise ClickHouseError(
                    "AUTHENTICATION_FAILED",
                    "Invalid authentication: it is not allowed to use Authorization HTTP header"
                    " and authentication via parameters simultaneously",
                )
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "basic":
                raise ClickHouseError(
                    "AUTHENTICATION_FAILED",
                    f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not"
                    " supported",
                )
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise ClickHouseError(
                    "AUTHENTICATION_FAILED", "Invalid authentication: malformed Basic credentials"
                ) from exc
            user, _, password = decoded.partition(":")
        else:
            user, password = params.get("user", "default"), params.get("password", "")
        if user != self._user or not secrets.compare_digest(password.encode(), self._password):
            raise ClickHouseError(
                "AUTHENTICATION_FAILED",
                f"{user}: Authentication failed: password is incorrect, or there is no user with"
                " such name",
            )

    def _context(self, request: HttpRequest, params: _Params, multipart: bool) -> _Context:
        context = _Context(
            database=request.headers.get("x-clickhouse-database", ""),
            default_format=request.headers.get("x-clickhouse-format", ""),
            readonly=request.method in ("GET", "HEAD"),
        )
        for name, value in params.items:
            if name == "database":
                context.database = context.database or value
            elif name == "default_format":
                context.default_format = context.default_format or value
            elif name.startswith("param_"):
                context.query_params.setdefault(name.removeprefix("param_"), value)
            elif (
                not name
                or name in _RESERVED_PARAMS
                or (multipart and name.endswith(_EXTERNAL_DATA_SUFFIXES))
            ):
                continue
            elif not _SETTING_NAME.fullmatch(name):
                raise ClickHouseError("UNKNOWN_SETTING", f"Unknown setting '{name}'")
            else:
                context.settings.append((name, value))
        return context

    def _unsupported_params(self, params: _Params) -> None:
        if params.get("role"):
            raise ClickHouseError(
                "NOT_IMPLEMENTED", "Roles are not supported by the chdb HTTP stand-in"
            )
        for name in ("compress", "decompress"):
            if _truthy(params.get(name, "0")):
                raise ClickHouseError(
                    "NOT_IMPLEMENTED",
                    f"'{name}=1' (ClickHouse's internal compression) is not supported by the chdb"
                    " HTTP stand-in; use HTTP Content-Encoding / Accept-Encoding",
                )

    def _query_text(
        self, request: HttpRequest, params: _Params, context: _Context, multipart: bool
    ) -> bytes:
        body = _decode_body(request.body, request.headers.get("content-encoding", ""))
        url_query = params.get("query")
        if not multipart:
            return url_query.encode() + b"\n" + body if url_query else body
        text = url_query.encode()
        parts = _form_fields(body, request.headers.get("content-type", ""))
        for count, part in enumerate(parts):
            self._engine.form_limits.check(count, part.name, part.value)
            if part.filename is not None:
                raise ClickHouseError(
                    "NOT_IMPLEMENTED",
                    "External data (multipart file parts) is not supported by the chdb HTTP"
                    " stand-in",
                )
            if part.name == "query":
                text += part.value
            elif part.name.startswith("param_"):
                name = part.name.removeprefix("param_")
                context.query_params.setdefault(name, part.value.decode())
        return text

    def _process(self, request: HttpRequest, params: _Params, coding: str | None) -> HttpAnswer:
        self._unsupported_params(params)
        multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
        context = self._context(request, params, multipart)
        plan = _plan(self._query_text(request, params, context, multipart))
        if plan.output_format and plan.output_format.lower() not in self._engine.formats:
            plan = replace(plan, output_format=None)  # `SELECT format FROM t` names a column
        for fmt in (context.default_format, plan.output_format or ""):
            if fmt.lower() in _CHDB_ONLY_FORMATS:
                raise ClickHouseError("UNKNOWN_FORMAT", f"Unknown format {fmt}")
        query_id = params.get("query_id") or request.headers.get("x-clickhouse-query-id", "")
        query_id = query_id or str(uuid.uuid4())

        session_id = params.get("session_id", "")
        if not session_id:
            connection = self._engine.connect()
            try:
                return self._run(connection, plan, context, coding, query_id, in_session=False)
            finally:
                connection.close()
        timeout_s = self._session_timeout(params.get("session_timeout") or None)
        session = self._sessions.acquire(
            session_id, timeout_s, _truthy(params.get("session_check", "0"))
        )
        try:
            return self._run(session.connection, plan, context, coding, query_id, in_session=True)
        finally:
            self._sessions.release(session_id, session, _truthy(params.get("close_session", "0")))

    @staticmethod
    def _session_timeout(value: str | None) -> int:
        if value is None:
            return _DEFAULT_SESSION_TIMEOUT_S
        if not value.isdigit():
            raise ClickHouseError("INVALID_SESSION_TIMEOUT", f"Invalid session timeout: '{value}'")
        if int(value) > _MAX_SESSION_TIMEOUT_S:
            raise ClickHouseError(
                "INVALID_SESSION_TIMEOUT",
                f"Session timeout '{value}' is larger than max_session_timeout:"
                f" {_MAX_SESSION_TIMEOUT_S}",
            )
        return int(value)

    def _run(
        self,
        connection: Any,
        plan: _Plan,
        context: _Context,
        coding: str | None,
        query_id: str,
        *,
        in_session: bool,
    ) -> HttpAnswer:
        restore: list[str] = []
        if in_session:
            restore = self._snapshot(connection, plan, context)
        try:
            # A GET's query context is read-only; a session's context cannot be made writable
            # again once read-only, so a GET inside a session is not restricted.
            if context.readonly and not in_session:
                self._call(connection, "SET readonly = 2")
            for name, value in context.settings:
                self._call(connection, f"SET {name} = {_sql_string(value)}")
            if context.database:
                self._call(connection, f"USE {_sql_identifier(context.database)}")
            fmt = plan.output_format or context.default_format or "TabSeparated"
            body, summary = self._execute(connection, plan, context, fmt)
            timezone, compress, level = self._answer_settings(connection, plan, coding)
        finally:
            for statement in restore:
                try:
                    connection.query(statement, "TabSeparated")
                except Exception:
                    logger.warning("could not restore session state with %r", statement)
        content_type = _content_type(fmt if plan.returns_result else "")
        headers = {
            "Content-Type": content_type,
            "X-ClickHouse-Server-Display-Name": DISPLAY_NAME,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
        }
        if plan.returns_result:
            headers["X-ClickHouse-Format"] = fmt
            headers["X-ClickHouse-Timezone"] = timezone
        if coding is not None and compress:
            body = _encode_body(body, coding, level)
            headers["Content-Encoding"] = coding
        return HttpAnswer(200, headers, body)

    def _execute(
        self, connection: Any, plan: _Plan, context: _Context, fmt: str
    ) -> tuple[bytes, dict[str, str]]:
        if plan.insert_format is not None:
            try:
                inserter = connection.send_insert(plan.sql, plan.insert_format)
            except Exception as exc:
                raise _engine_error(exc) from exc
            try:
                data = plan.insert_data
                for offset in range(0, len(data), _INSERT_CHUNK):
                    inserter.append(data[offset : offset + _INSERT_CHUNK])
                written = inserter.finish()
            except Exception as exc:
                with suppress(Exception):
                    inserter.cancel()
                raise _engine_error(exc) from exc
            rows, size = str(written.rows_written), str(written.bytes_written)
            summary = {"read_rows": rows, "read_bytes": str(len(plan.insert_data))}
            summary |= {"written_rows": rows, "written_bytes": size}
            summary["elapsed_ns"] = str(int(written.elapsed * 1e9))
            return b"", summary
        result = self._call(connection, plan.sql, fmt, context.query_params)
        body = bytes(result.bytes() or b"")
        summary = {
            "read_rows": str(result.rows_read()),
            "read_bytes": str(result.bytes_read()),
            "written_rows": str(result.rows_written()),
            "written_bytes": str(result.bytes_written()),
            "result_bytes": str(len(body)),
            "elapsed_ns": str(int(result.elapsed() * 1e9)),
        }
        return body, summary

    def _answer_settings(
        self, connection: Any, plan: _Plan, coding: str | None
    ) -> tuple[str, bool, int]:
        """The query context's time zone and response compression, read back from the engine
        so settings from the URL, the session or a SET all count as on the server."""
        if coding is None and not plan.returns_result:
            return self._engine.timezone, False, 3
        row = self._call(
            connection,
            "SELECT timezone(), getSetting('enable_http_compression'),"
            " getSetting('http_zlib_compression_level')",
            "TabSeparated",
        )
        timezone, enabled, level = row.bytes().decode().rstrip("\n").split("\t")
        return timezone, _truthy(enabled), int(level)

    def _snapshot(self, connection: Any, plan: _Plan, context: _Context) -> list[str]:
        """Statements that undo this request's settings and database on a session connection:
        on the server they apply to the query context only, unlike a SET or USE statement."""
        mentioned = (
            {_word(plan.sql, t) for t in _tokens(plan.sql) if t.kind == "word"}
            if plan.keyword == "SET"
            else set()
        )
        names = sorted({name for name, _ in context.settings if name.upper() not in mentioned})
        statements: list[str] = []
        if names:
            wanted = ", ".join(_sql_string(name) for name in names)
            rows = self._call(
                connection,
                f"SELECT name, value, changed FROM system.settings WHERE name IN ({wanted})",
                "JSONEachRow",
            )
            for line in rows.bytes().decode().splitlines():
                row = json.loads(line)
                value = _sql_string(row["value"]) if row["changed"] else "DEFAULT"
                statements.append(f"SET {row['name']} = {value}")
        if context.database and plan.keyword != "USE":
            current = self._call(connection, "SELECT currentDatabase()", "TabSeparated")
            database = current.bytes().decode().rstrip("\n")
            statements.append(f"USE {_sql_identifier(database)}")
        return statements

    @staticmethod
    def _call(
        connection: Any, sql: str | bytes, fmt: str = "TabSeparated", params: Any = None
    ) -> Any:
        try:
            return connection.query(sql, fmt, params=params or {})
        except Exception as exc:
            raise _engine_error(exc) from exc

    def _error_answer(self, exc: ClickHouseError, coding: str | None) -> HttpAnswer:
        code = exc.code if exc.code is not None else self._engine.code_of(exc.name or "")
        name = self._engine.name_of(code)
        version = self._engine.version
        text = (
            f"Poco::Exception. Code: {code}, e.code() = 0, HTML Form Exception: {exc.message}"
            f" (version {version})\n"
            if exc.html_form
            else f"Code: {code}. DB::Exception: {exc.message}. ({name}) (version {version})\n"
        )
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Server-Display-Name": DISPLAY_NAME,
            "X-ClickHouse-Exception-Code": str(code),
        }
        if name == "REQUIRED_PASSWORD":
            headers["WWW-Authenticate"] = 'Basic realm="ClickHouse server HTTP API"'
        body = text.encode()
        if coding is not None:
            body = _encode_body(body, coding, 3)
            headers["Content-Encoding"] = coding
        return HttpAnswer(_HTTP_STATUS_BY_ERROR.get(name, 500), headers, body)


# ---- the server process -----------------------------------------------------------------------


def build_app(handler: ChdbHttpHandler) -> Starlette:
    """A Starlette app that hands every request to ``handler`` on a worker thread (chdb calls
    block; the GIL is released while the engine works)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        http_request = HttpRequest(
            method=request.method,
            path=request.url.path,
            query_string=request.scope["query_string"].decode("latin-1"),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.body(),
        )
        answer = await run_in_threadpool(handler.handle, http_request)
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])


def serve(
    data_dir: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8123,
    user: str = "default",
    password: str = "",
    port_file: str | os.PathLike[str] | None = None,
    keep_alive_timeout_s: int = 30,
    exit_with_parent: int | None = None,
) -> None:
    """Hold the engine on ``data_dir`` and serve HTTP until SIGTERM/SIGINT.

    ``port=0`` picks a free port; ``port_file`` receives the bound port once the engine is open.
    ``exit_with_parent`` is a process id: the server stops when it is no longer our parent.
    """
    import uvicorn

    handler = ChdbHttpHandler(data_dir, user=user, password=password)
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        bound = sock.getsockname()[1]
        if port_file is not None:
            staging = Path(f"{os.fspath(port_file)}.tmp")
            staging.write_text(str(bound))
            staging.replace(port_file)
        config = uvicorn.Config(
            build_app(handler),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=keep_alive_timeout_s,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        if exit_with_parent is not None:
            threading.Thread(
                target=_watch_parent, args=(exit_with_parent, server), daemon=True
            ).start()
        logger.warning(
            "chdb HTTP stand-in (engine %s) serving %s on %s:%s",
            handler.version,
            data_dir,
            host,
            bound,
        )
        server.run(sockets=[sock])
    finally:
        handler.close()


def _watch_parent(parent_pid: int, server: Any) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    logger.warning("parent process %s is gone: shutting down", parent_pid)
    server.should_exit = True


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.chdb_http",
        description="chdb HTTP stand-in: ClickHouse's HTTP interface (the subset clickhouse-"
        "connect uses) over the real engine held by chdb. A test tool, not a ClickHouse server.",
    )
    parser.add_argument("--data-dir", required=True, help="chdb data directory to hold")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument("--user", default="default")
    parser.add_argument(
        "--password",
        default=os.environ.get(PASSWORD_ENV, ""),
        help=f"defaults to ${PASSWORD_ENV}, else empty",
    )
    parser.add_argument("--port-file", help="write the bound port here once serving")
    parser.add_argument("--keep-alive-timeout", type=int, default=30)
    parser.add_argument("--exit-with-parent", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    serve(
        args.data_dir,
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        port_file=args.port_file,
        keep_alive_timeout_s=args.keep_alive_timeout,
        exit_with_parent=args.exit_with_parent,
    )


# ---- driving it from tests ----------------------------------------------------------------------


class ChdbHttpProcess:
    """The stand-in as a child process holding ``data_dir`` (chdb: one process per directory).

    ``start()`` returns once ``GET /ping`` answers ``Ok.\\n``; ``url`` is then
    ``http://user:password@127.0.0.1:port`` for ``clickhouse_connect.get_client(dsn=url)``.
    ``pause()``/``resume()`` send SIGSTOP/SIGCONT (the port keeps accepting connections but
    nothing answers: an unreachable server), ``kill()`` is kill -9, ``stop()`` a graceful stop.
    The child exits on its own if this process dies. A random password is used unless given.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        *,
        user: str = "default",
        password: str | None = None,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.user = user
        self.password = secrets.token_hex(12) if password is None else password
        self.startup_timeout_s = startup_timeout_s
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._workdir: Path | None = None
        self.log_path: Path | None = None

    def __repr__(self) -> str:
        state = "paused" if self._paused else "running" if self.running else "stopped"
        return f"ChdbHttpProcess({str(self.data_dir)!r}, port={self._port}, {state})"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the stand-in has no port before start()")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"http://{credentials}@{host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the stand-in is not started")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._workdir = workdir = Path(tempfile.mkdtemp(prefix="chdb-http-"))
        port_file = workdir / "port"
        self.log_path = workdir / "server.log"  # removed with the process; errors quote it
        env = dict(os.environ)
        env[PASSWORD_ENV] = self.password
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
        command = [
            sys.executable,
            "-m",
            "tests.support.chdb_http",
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
            "--port",
            str(self._port or 0),
            "--port-file",
            str(port_file),
            "--user",
            self.user,
            "--exit-with-parent",
            str(os.getpid()),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        self._paused = False
        try:
            self._wait_until_ready(port_file)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_until_ready(self, port_file: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"the chdb HTTP stand-in exited during startup:\n{self._log()}")
            if self._port is None and port_file.exists():
                self._port = int(port_file.read_text())
            if self._port is not None and port_file.exists() and self._ping():
                return
            time.sleep(0.02)
        raise TimeoutError(f"the chdb HTTP stand-in did not answer /ping:\n{self._log()}")

    def _ping(self) -> bool:
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            with urllib.request.urlopen(f"http://{host}:{self.port}/ping", timeout=2) as answer:
                return bool(answer.read() == b"Ok.\n")
        except (OSError, urllib.error.URLError):
            return False

    def _log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-4000:]

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, but nothing answers."""
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self._paused = False

    def kill(self) -> None:
        """kill -9: no shutdown at all, like a crashed server (chdb's data stays on disk)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self._reap(timeout_s=10)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Graceful stop (SIGTERM), escalating to kill -9 after ``timeout_s``."""
        if self._process is None:
            return
        if self._process.poll() is None:
            if self._paused:
                self.resume()
            self._process.terminate()
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._reap(timeout_s=10)

    def _signal(self, signum: int) -> None:
        if not self.running:
            raise RuntimeError(f"{self!r} is not running")
        assert self._process is not None
        self._process.send_signal(signum)

    def _reap(self, timeout_s: float) -> None:
        if self._process is not None:
            self._process.wait(timeout_s)
        self._paused = False
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = self.log_path = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
