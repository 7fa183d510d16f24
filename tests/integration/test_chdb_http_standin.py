"""Is the chdb HTTP stand-in (:mod:`tests.support.chdb_http`) faithful?

The same client operations run through clickhouse-connect's real HTTP client against the stand-in
and through clickhouse-connect's ``chdb://`` backend in a child process (chdb allows one data path
per process) must give identical Python values. Beyond that, the stand-in must fail the way a
ClickHouse server fails: errors as ``DatabaseError`` with the engine's code, authentication, one
statement per request, read-only GETs, sessions, compression, the HTTP form limits, and an
unreachable (paused) or killed server that the projection store reports as unavailable.
"""

from __future__ import annotations

import base64
import gzip
import multiprocessing
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import clickhouse_connect
import lz4.frame  # type: ignore[import-untyped]
import pytest
from backports import zstd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from projections.clickhouse import ClickHouseProjectionStore
from projections.ports import ProjectionStoreUnavailable
from schemas.heartbeat import Heartbeat
from tests.support.chdb_http import DISPLAY_NAME, ChdbHttpProcess
from tests.support.store_inspect import count_heartbeats

pytestmark = pytest.mark.clickhouse

# Every column type the projection store uses.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "Int64"),
    ("s", "String"),
    ("ns", "Nullable(String)"),
    ("f", "Float64"),
    ("i", "Int64"),
    ("ni", "Nullable(Int64)"),
    ("u8", "UInt8"),
    ("b", "Bool"),
    ("d", "Date"),
    ("ts", "DateTime64(3, 'UTC')"),
    ("arr", "Array(String)"),
    ("m", "Map(String, Float64)"),
    ("lc", "LowCardinality(String)"),
)
NAMES = [name for name, _ in COLUMNS]
TYPES = [type_name for _, type_name in COLUMNS]
TRICKY = "o'brien ✓\t\\n\n'quoted' \"double\" `back` \x00nul"
ROWS: list[list[Any]] = [
    [
        *(1, "", None, 0.0, 0, None, 0, False),
        *(date(1970, 1, 1), datetime(1970, 1, 1, tzinfo=UTC), [], {}, ""),
    ],
    [
        *(2, TRICKY, "x", -1.5, -(2**63), 2**63 - 1, 255, True, date(2149, 6, 6)),
        datetime(2024, 3, 30, 23, 59, 59, 999000, tzinfo=UTC),
        ["a", "", "ü'\"\\"],
        {"k": 1.25, "ünï": -0.0},
        "Python",
    ],
    [
        *(3, "日本語", "", float("inf"), 2**63 - 1, -(2**63), 1, True, date(2024, 2, 29)),
        datetime(1969, 7, 20, 20, 17, 40, 123000, tzinfo=UTC),
        ["x" * 5000],
        {"tiny": 5e-324, "huge": 1.7976931348623157e308, "neg": float("-inf")},
        "Go",
    ],
]
# Column-oriented, without type names (clickhouse-connect DESCRIBEs the table), times as ticks.
MORE_COLUMNS: list[list[Any]] = [
    [10, 11],
    ["ten", "eleven"],
    [None, "n"],
    [1e-300, 2.5],
    [42, -42],
    [0, None],
    [128, 7],
    [False, True],
    [date(2000, 1, 1), date(2024, 3, 30)],
    [1711843200123, 946684800000],
    [["p", "q"], []],
    [{"a": 1.0}, {"a": 2.0, "b": 3.0}],
    ["Python", "Rust"],
]
# label, SQL (<db> is the test's database), parameters, settings
ERROR_CASES: tuple[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None], ...] = (
    ("syntax", "SELEC 1", None, None),
    ("unknown table", "SELECT * FROM <db>.missing", None, None),
    ("unknown database", "SELECT * FROM no_such_database.t", None, None),
    ("bad parameter", "SELECT {n:UInt8}", {"n": "not a number"}, None),
    ("unknown function", "SELECT no_such_function(1)", None, None),
    ("unknown setting", "SELECT 1", None, {"no_such_setting_at_all": 1}),
)


def exercise(client: Client, database: str) -> dict[str, Any]:
    """Client operations whose results must not depend on the transport."""
    out: dict[str, Any] = {}
    table = f"{database}.values"
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    columns = ", ".join(f"{name} {type_name}" for name, type_name in COLUMNS)
    created = client.command(f"CREATE TABLE {table} ({columns}) ENGINE = MergeTree ORDER BY id")
    out["create"] = type(created).__name__
    out["insert rows"] = client.insert(
        table, ROWS, column_names=NAMES, column_type_names=TYPES
    ).written_rows
    out["insert columns"] = client.insert(
        table, MORE_COLUMNS, column_names=NAMES, column_oriented=True
    ).written_rows
    everything = client.query(f"SELECT * FROM {table} ORDER BY id")
    out["rows"] = everything.result_rows
    out["names"] = everything.column_names
    out["types"] = [column_type.name for column_type in everything.column_types]
    out["parameters"] = client.query(
        f"SELECT id FROM {table} WHERE s = {{s:String}} OR arr = {{arr:Array(String)}}"
        " OR ts = {ts:DateTime64(3, 'UTC')} OR d IN {days:Array(Date)}"
        " OR mapKeys(m) = {keys:Array(String)} OR (ns IS NULL AND i < {i:Int64}) ORDER BY id",
        parameters={
            "s": TRICKY,
            "arr": ["p", "q"],
            "ts": datetime(1969, 7, 20, 20, 17, 40, 123000, tzinfo=UTC),
            "days": [date(2149, 6, 6)],
            "keys": ["a", "b"],
            "i": 1,
        },
    ).result_rows
    # Parameters over 4 KiB travel as a multipart form (clickhouse-connect's form encoding).
    keys = [(n, "x") for n in range(1000)] + [(2, TRICKY), (10, "ten")]
    out["many keys"] = client.query(
        f"SELECT id FROM {table} WHERE (id, s) IN {{keys:Array(Tuple(Int64, String))}} ORDER BY id",
        parameters={"keys": keys},
    ).result_rows
    out["scalar"] = client.command(f"SELECT count() FROM {table}")
    out["row"] = client.command(f"SELECT min(id), max(id), any(lc) FROM {table} WHERE id = 2")
    out["empty"] = client.command("SELECT 1 WHERE 0")
    arrow = client.query_arrow(f"SELECT id, s, ns, f, arr, lc FROM {table} ORDER BY id")
    out["arrow"] = arrow.to_pylist()
    out["aggregate"] = client.query(
        f"SELECT lc, count(), sumMap(m), arraySort(groupArray(d)) FROM {table}"
        " GROUP BY lc ORDER BY lc"
    ).result_rows
    out["setting"] = client.query(
        "SELECT getSetting('max_block_size')", settings={"max_block_size": 1234}
    ).result_rows
    errors: dict[str, int | None] = {}
    for label, sql, params, settings in ERROR_CASES:
        try:
            client.query(sql.replace("<db>", database), parameters=params, settings=settings)
            errors[label] = None
        except DatabaseError as exc:
            errors[label] = exc.code
    out["errors"] = errors
    return out


def exercise_over_chdb(path: str) -> dict[str, Any]:
    """:func:`exercise` over ``chdb://`` (run in a child process: one chdb path per process)."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    try:
        return exercise(client, "faithful")
    finally:
        client.close()


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbHttpProcess]:
    server = ChdbHttpProcess(tmp_path_factory.mktemp("standin")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("reference")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        result: dict[str, Any] = pool.submit(exercise_over_chdb, str(path)).result(timeout=120)
    return result


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes


def http(
    server: ChdbHttpProcess,
    sql: str | None = None,
    *,
    method: str = "POST",
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    auth: tuple[str, str] | None = None,
) -> Answer:
    """A plain HTTP request (urllib, no clickhouse-connect), authenticated as the server's user
    unless ``auth`` or an ``X-ClickHouse-User`` header says otherwise."""
    request = Request(
        f"http://127.0.0.1:{server.port}/?{urlencode(params or {})}",
        data=(sql.encode() if sql is not None else body) if method == "POST" else None,
        method=method,
        headers=dict(headers or {}),
    )
    user, password = auth or (server.user, server.password)
    if not any(name.lower() == "x-clickhouse-user" for name in headers or {}):
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    try:
        with urlopen(request, timeout=10) as response:
            return Answer(response.status, response.headers, response.read())
    except HTTPError as exc:
        return Answer(exc.code, exc.headers, exc.read())


def heartbeat(event_id: str, user_id: str = "u1") -> Heartbeat:
    when = datetime(2024, 3, 30, 10, tzinfo=UTC).timestamp()
    return Heartbeat(
        event_id=event_id,
        user_id=user_id,
        time=when,
        entity="/src/main.py",
        timezone="UTC",
        received_at=when + 1,
        source="wakatime",
    )


# --- faithful values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="client-defaults"),  # lz4 inserts, zstd answers, a session per client
        pytest.param({"compress": False, "autogenerate_session_id": False}, id="plain"),
    ],
)
def test_client_operations_match_chdb_backend(
    standin: ChdbHttpProcess, reference: dict[str, Any], options: dict[str, Any]
) -> None:
    client = clickhouse_connect.get_client(dsn=standin.url, **options)
    try:
        over_http = exercise(client, f"faithful_{uuid.uuid4().hex[:8]}")
    finally:
        client.close()

    assert set(over_http) == set(reference)
    for key, expected in reference.items():
        assert over_http[key] == expected, key
    # ... and the reference itself is what the operations mean, so equality is not vacuous.
    assert (reference["insert rows"], reference["insert columns"], reference["scalar"]) == (3, 2, 5)
    assert [row[1] for row in reference["rows"]] == ["", TRICKY, "日本語", "ten", "eleven"]
    assert reference["parameters"] == [(1,), (2,), (3,), (10,), (11,)]
    assert reference["many keys"] == [(2,), (10,)]
    assert (reference["row"], reference["empty"]) == (["2", "2", "Python"], "")
    assert reference["errors"] == {
        "syntax": 62,
        "unknown table": 60,
        "unknown database": 81,
        "bad parameter": 457,
        "unknown function": 46,
        "unknown setting": 115,
    }


# --- failing like a server ---------------------------------------------------------------------


def test_ping_and_default_answer(standin: ChdbHttpProcess) -> None:
    assert http(standin, method="GET", auth=("nobody", "")).body == b"Ok.\n"
    with urlopen(f"http://127.0.0.1:{standin.port}/ping", timeout=5) as response:
        assert response.read() == b"Ok.\n"


def test_errors_are_answered_like_clickhouse(standin: ChdbHttpProcess) -> None:
    syntax = http(standin, "SELEC 1")
    missing = http(standin, "SELECT * FROM system.no_such_table")
    setting = http(standin, "SELECT 1", params={"no_such_setting_at_all": "1"})

    assert (syntax.status, syntax.headers["X-ClickHouse-Exception-Code"]) == (400, "62")
    assert syntax.body.startswith(b"Code: 62. DB::Exception: Syntax error")
    assert re.search(rb"\(SYNTAX_ERROR\) \(version [0-9.]+\)\n$", syntax.body)
    assert (missing.status, missing.headers["X-ClickHouse-Exception-Code"]) == (404, "60")
    assert (setting.status, setting.headers["X-ClickHouse-Exception-Code"]) == (404, "115")
    assert syntax.headers["X-ClickHouse-Server-Display-Name"] == DISPLAY_NAME

    client = clickhouse_connect.get_client(dsn=standin.url)
    with pytest.raises(DatabaseError) as caught:
        client.query("SELECT * FROM system.no_such_table")
    assert caught.value.code == 60
    assert "UNKNOWN_TABLE" in str(caught.value)


def test_one_statement_per_request(standin: ChdbHttpProcess, tmp_path: Path) -> None:
    client = clickhouse_connect.get_client(dsn=standin.url)
    with pytest.raises(DatabaseError, match="Multi-statements are not allowed") as caught:
        client.command("CREATE DATABASE multi_a; CREATE DATABASE multi_b")
    assert caught.value.code == 62
    assert client.command("SELECT count() FROM system.databases WHERE name LIKE 'multi_%'") == 0
    assert client.command("SELECT 1;") == 1  # one trailing semicolon is fine
    with pytest.raises(DatabaseError):
        client.command("1 + 1")  # chdb's implicit_select is reset to the server default

    assert b"Empty query" in http(standin, "  -- nothing\n").body
    outfile = tmp_path / "leak.tsv"
    refused = http(standin, f"SELECT 1 INTO OUTFILE '{outfile}'")
    assert b"INTO OUTFILE is not allowed" in refused.body
    assert not outfile.exists()


def test_wrong_credentials_are_refused(standin: ChdbHttpProcess) -> None:
    wrong = standin.url.replace(standin.password, "wrong")
    with pytest.raises(DatabaseError) as caught:
        clickhouse_connect.get_client(dsn=wrong)
    assert caught.value.code == 516

    assert http(standin, "SELECT 1", auth=(standin.user, "wrong")).status == 403
    assert http(standin, "SELECT 1", auth=("nobody", standin.password)).status == 403
    by_headers = {"X-ClickHouse-User": standin.user, "X-ClickHouse-Key": standin.password}
    assert http(standin, "SELECT 1", headers=by_headers).body == b"1\n"
    mixed = http(standin, "SELECT 1", params={"user": standin.user})  # plus Basic auth
    assert mixed.headers["X-ClickHouse-Exception-Code"] == "516"
    by_params = {"user": standin.user, "password": standin.password, "query": "SELECT 2"}
    no_basic = Request(f"http://127.0.0.1:{standin.port}/?{urlencode(by_params)}")
    with urlopen(no_basic, timeout=5) as response:
        assert response.read() == b"2\n"


def test_get_requests_are_read_only(standin: ChdbHttpProcess) -> None:
    answer = http(standin, method="GET", params={"query": "CREATE DATABASE from_get"})

    assert answer.headers["X-ClickHouse-Exception-Code"] == "164"  # READONLY
    assert http(standin, method="GET", params={"query": "SELECT 3"}).body == b"3\n"


def test_sessions_keep_state_and_lock(standin: ChdbHttpProcess) -> None:
    first = clickhouse_connect.get_client(dsn=standin.url)
    other = clickhouse_connect.get_client(dsn=standin.url)
    first.command("SET max_block_size = 1234")
    first.command("CREATE TEMPORARY TABLE scratch (x Int8)")
    first.insert("scratch", [[1], [2]], column_names=["x"])

    assert first.command("SELECT getSetting('max_block_size')") == 1234
    per_query = first.query("SELECT getSetting('max_block_size')", settings={"max_block_size": 9})
    assert per_query.result_rows == [(9,)]
    assert first.command("SELECT getSetting('max_block_size')") == 1234  # per request only
    assert first.command("SELECT sum(x) FROM scratch") == 3
    assert other.command("SELECT getSetting('max_block_size')") != 1234
    with pytest.raises(DatabaseError):
        other.command("SELECT sum(x) FROM scratch")

    session = {"session_id": f"lock-{uuid.uuid4()}"}
    slow = threading.Thread(target=lambda: http(standin, "SELECT sleep(1.5)", params=session))
    slow.start()
    running = "SELECT count() FROM system.processes WHERE query = 'SELECT sleep(1.5)'"
    deadline = time.monotonic() + 10
    while http(standin, running).body != b"1\n" and time.monotonic() < deadline:
        time.sleep(0.02)
    locked = http(standin, "SELECT 1", params=session)
    slow.join()
    assert locked.headers["X-ClickHouse-Exception-Code"] == "373"  # SESSION_IS_LOCKED
    missing = http(standin, "SELECT 1", params={"session_id": "nope", "session_check": "1"})
    assert missing.headers["X-ClickHouse-Exception-Code"] == "372"  # SESSION_NOT_FOUND


def test_compressed_answers_and_bodies(standin: ChdbHttpProcess) -> None:
    zstd_answer = http(
        standin,
        "SELECT 'compressed'",
        params={"enable_http_compression": "1"},
        headers={"Accept-Encoding": "gzip, lz4, zstd"},
    )
    plain_answer = http(
        standin,
        "SELECT 'plain'",
        params={"enable_http_compression": "0"},
        headers={"Accept-Encoding": "gzip"},
    )
    assert zstd_answer.headers["Content-Encoding"] == "zstd"  # the server's first preference
    assert zstd.decompress(zstd_answer.body) == b"compressed\n"
    assert plain_answer.headers["Content-Encoding"] is None
    assert plain_answer.body == b"plain\n"

    database = f"bodies_{uuid.uuid4().hex[:8]}"
    http(standin, f"CREATE DATABASE {database}")
    http(standin, f"CREATE TABLE {database}.t (a Int64, s String) ENGINE = MergeTree ORDER BY a")
    query = {"query": f"INSERT INTO {database}.t FORMAT TabSeparated"}
    gzipped = http(
        standin, params=query, headers={"Content-Encoding": "gzip"}, body=gzip.compress(b"1\tg\n")
    )
    frames = lz4.frame.compress(b"2\tl\n") + lz4.frame.compress(b"3\tm\n")  # one frame per block
    lz4ed = http(standin, params=query, headers={"Content-Encoding": "lz4"}, body=frames)
    # After VALUES the rest of the request is data for the engine's Values format, never a
    # second statement: the DROP must not run.
    http(standin, f"INSERT INTO {database}.t VALUES (4, 'v'); DROP TABLE {database}.t")
    assert (gzipped.status, lz4ed.status) == (200, 200)
    rows = http(standin, f"SELECT a, s FROM {database}.t WHERE a < 4 ORDER BY a")
    assert rows.body == b"1\tg\n2\tl\n3\tm\n"


def test_form_fields_are_limited_like_the_server(standin: ChdbHttpProcess) -> None:
    client = clickhouse_connect.get_client(dsn=standin.url)
    fits = ["x" * 100] * 1200  # about 125 KiB formatted, under http_max_field_value_size
    too_long = ["x" * 100] * 1400

    assert client.query("SELECT length({v:Array(String)})", {"v": fits}).result_rows == [(1200,)]
    with pytest.raises(DatabaseError, match="Field value too long") as caught:
        client.query("SELECT length({v:Array(String)})", {"v": too_long})
    assert caught.value.code == 1000  # POCO_EXCEPTION, as the server's HTML form parser raises


# --- unreachable, then back ----------------------------------------------------------------------


def test_pause_times_out_and_resume_recovers(standin: ChdbHttpProcess) -> None:
    # No HTTP session, like the store: a timed-out query still holds its session on a server
    # (here too, once resumed), so the next query in that session would be SESSION_IS_LOCKED.
    client = clickhouse_connect.get_client(
        dsn=standin.url, send_receive_timeout=1, autogenerate_session_id=False
    )
    store = ClickHouseProjectionStore(f"{standin.url}/?send_receive_timeout=1", "paused")
    store.migrate()
    store.insert_heartbeats([heartbeat("e1")])

    standin.pause()
    try:
        with pytest.raises(OperationalError):
            client.query("SELECT 1")
        with pytest.raises(ProjectionStoreUnavailable):
            count_heartbeats(store, "u1")
    finally:
        standin.resume()

    assert client.command("SELECT 1") == 1
    assert count_heartbeats(store, "u1") == 1
    store.close()


def test_killed_server_is_unavailable_and_restart_keeps_data(tmp_path: Path) -> None:
    server = ChdbHttpProcess(tmp_path / "data").start()
    store = ClickHouseProjectionStore(server.url, "durable")
    try:
        store.migrate()
        store.insert_heartbeats([heartbeat(f"e{n}") for n in range(3)])

        server.kill()
        with pytest.raises(ProjectionStoreUnavailable):
            count_heartbeats(store, "u1")
        server.start()  # same data directory, same port

        assert count_heartbeats(store, "u1") == 3
    finally:
        store.close()
        server.stop()


def test_store_reads_a_replay_sized_batch_of_days(standin: ChdbHttpProcess) -> None:
    store = ClickHouseProjectionStore(standin.url, "many_days")
    try:
        store.migrate()
        # A replay-sized batch: far more keys than fit in one parameter on a server.
        keys = [(str(uuid.uuid4()), date(2024, 3, 30)) for _ in range(5000)]
        beat = Heartbeat(
            event_id="e-many",
            user_id=keys[4321][0],
            time=datetime(2024, 3, 30, 12, tzinfo=UTC).timestamp(),
            entity="a.py",
            received_at=datetime(2024, 3, 30, 12, tzinfo=UTC).timestamp(),
            source="wakatime",
        )
        store.insert_heartbeats([beat])

        found = store.heartbeats_for_days(keys)
        assert len(found) == 5000
        assert found[keys[4321]] == [beat]
        assert sum(len(v) for v in found.values()) == 1
    finally:
        store.close()
