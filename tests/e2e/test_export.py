"""Exports on a real ``codetrackr serve``, over HTTP as a user downloads them: the JSON array and
the CSV of every heartbeat (``/api/v1/export/json``, ``/api/v1/export/csv``) and the GDPR export
(``/api/v1/users/current/export``).

Each holds exactly the caller's heartbeats that were not deleted, once each, in time order; CSV
parses back with the ``csv`` module whatever the entity names hold; no secret is ever exported.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from accounts.plugins import PluginCatalog
from accounts.state import User
from accounts.themes import ThemeCatalog
from api.routes.export import build_export_router
from api.rules.export import HEARTBEAT_COLUMNS
from http_edge.auth import Principal
from http_edge.errors import install_error_handlers
from projections.ports import ProjectionStoreUnavailable
from schemas.heartbeat import Heartbeat
from tests.e2e.harness import Client, CodeTrackrProcess, eventually, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

TZ = "Europe/Berlin"
ENTITIES = [
    "/src/plain.py",
    "/src/a, b.py",
    '/src/say "hi", twice "".py',
    "/src/two\nlines.py",
    "/src/crlf\r\nname.py",
    "/src/ünïcødé/日本語/🚀.py",
    "=SUM(A1:A2)",
]
EXPORTS = ("/api/v1/export/json", "/api/v1/export/csv", "/api/v1/users/current/export")


@dataclass
class World:
    server: CodeTrackrProcess
    alice: Client
    bob: Client
    kept: list[str]  # alice's heartbeat ids that were not deleted, in time order
    deleted: str
    bob_ids: list[str]


def waka_bulk(user: Client, items: list[dict[str, Any]]) -> list[str]:
    response = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=items, headers=user.key_header
    )
    assert response.status_code == 201, response.text
    answers = response.json()["responses"]
    assert all(status == 201 for _, status in answers), answers
    return [data["data"]["id"] for data, _ in answers]


def json_export(user: Client, **headers: str) -> list[dict[str, Any]]:
    response = user.http.get("/api/v1/export/json", headers=headers or user.bearer)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = CodeTrackrProcess("serve", tmp_path_factory.mktemp("export") / "data").start()
    try:
        alice, bob = Client(server.url, timezone=TZ), Client(server.url, timezone=TZ)
        noon = (datetime.now(ZoneInfo(TZ)) - timedelta(days=1)).replace(
            hour=12, minute=0, second=0, microsecond=0
        )
        t0 = noon.timestamp()
        items = [
            {"entity": entity, "type": "file", "time": t0 + 60 * i, "project": f"p,{i}"}
            for i, entity in enumerate(ENTITIES)
        ]
        # Sent in reverse: exports are in time order, not in order of arrival.
        ids = list(reversed(waka_bulk(alice, list(reversed(items)))))
        waka_bulk(alice, items[:2])  # duplicates: still once each
        bob_ids = waka_bulk(bob, [{**item, "entity": "/bob" + item["entity"]} for item in items])
        deleted = ids[2]
        gone = alice.http.request(
            "DELETE",
            "/api/v1/users/current/heartbeats.bulk",
            json={"date": noon.date().isoformat(), "ids": [deleted]},
            headers=alice.key_header,
        )
        assert gone.status_code == 202, gone.text
        kept = [hb for hb in ids if hb != deleted]

        def projected() -> None:
            assert [r["id"] for r in json_export(alice)] == kept
            assert len(json_export(bob)) == len(ENTITIES)

        eventually(projected, timeout_s=60)
        yield World(server, alice, bob, kept, deleted, bob_ids)
    finally:
        server.stop()


def test_json_export_is_the_callers_live_heartbeats_in_time_order(world: World) -> None:
    response = world.alice.http.get("/api/v1/export/json", headers=world.alice.key_header)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="codetrackr-')
    assert disposition.endswith('.json"')
    assert response.headers["cache-control"] == "no-store"
    records = response.json()
    assert [r["id"] for r in records] == world.kept
    assert [r["entity"] for r in records] == [e for i, e in enumerate(ENTITIES) if i != 2]
    assert all(tuple(r) == HEARTBEAT_COLUMNS for r in records)
    assert {r["timezone"] for r in records} == {TZ}
    assert not set(world.bob_ids) & {r["id"] for r in records}
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)


def test_csv_export_parses_back_with_the_csv_module(world: World) -> None:
    response = world.alice.http.get("/api/v1/export/csv", headers=world.alice.bearer)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))
    records = json_export(world.alice)
    assert [row["id"] for row in rows] == world.kept
    assert [row["entity"] for row in rows] == [r["entity"] for r in records]
    assert [row["project"] for row in rows] == [r["project"] for r in records]
    assert list(rows[0]) == list(HEARTBEAT_COLUMNS)
    assert [float(row["time"]) for row in rows] == [r["time"] for r in records]
    assert {row["is_write"] for row in rows} == {"false"}
    assert {row["lines"] for row in rows} == {""}  # null


def test_gdpr_export_holds_everything_about_the_caller_and_no_secret(world: World) -> None:
    alice = world.alice
    response = alice.http.get("/api/v1/users/current/export", headers=alice.bearer)

    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith('.json"')
    document = response.json()
    assert document["export"]["format"] == "codetrackr.gdpr-export"
    assert document["user"]["username"] == alice.username
    assert document["user"]["timezone"] == TZ
    (key,) = document["api_keys"]
    assert key["name"] == "editor"
    assert alice.api_key.startswith(key["key_prefix"])
    assert document["sessions"]  # the login of the fixture
    assert [d["id"] for d in document["deleted_heartbeats"]] == [world.deleted]
    assert [r["id"] for r in document["heartbeats"]] == world.kept
    assert document["heartbeats"] == json_export(alice)
    assert sum(day["heartbeat_count"] for day in document["daily_stats"]) == len(world.kept)
    assert document["weekly_stats"]
    assert document["account_events"][0]["type"] == "AccountCreated"
    # Neither the secrets nor any hash of them, nor another user's data.
    body = response.text
    assert alice.api_key not in body
    assert alice.account_number not in body
    assert "hash" not in body
    assert world.bob.username not in body
    assert not any(hb in body for hb in world.bob_ids)


def test_exports_need_credentials(world: World) -> None:
    for path in EXPORTS:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = httpx.get(world.server.url + path, headers=headers)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "unauthorized"


def test_export_of_thousands_of_heartbeats_streams_them_all(world: World) -> None:
    """More heartbeats than one block of the store's stream, imported in one request."""
    user = Client(world.server.url)
    start = float(int((datetime.now(UTC) - timedelta(days=3)).timestamp()))
    items = [
        {"project": "bulk", "file": f"/src/{i % 50}.py", "time": start + i, "duration": 1}
        for i in range(4500)
    ]
    imported = user.http.post("/api/v1/import", json=items, headers=user.key_header)
    assert imported.status_code == 200, imported.text

    def complete() -> None:
        assert len(json_export(user)) == len(items)

    eventually(complete, timeout_s=60)
    with user.http.stream("GET", "/api/v1/export/csv", headers=user.bearer) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        text = b"".join(response.iter_bytes()).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [float(row["time"]) for row in rows] == [item["time"] for item in items]
    gdpr = json.loads(user.http.get("/api/v1/users/current/export", headers=user.bearer).content)
    assert len(gdpr["heartbeats"]) == len(items)


# --- failures: the real router under uvicorn, with a store that fails on cue -----------------


class FailingStore:
    """Streams ``blocks`` one-heartbeat blocks, then raises ``error``; with no blocks, every read
    raises it (the store is down). A real store cannot be made to fail mid-download."""

    def __init__(self, blocks: int, error: Exception) -> None:
        self.blocks = blocks
        self.error = error
        self.closed = threading.Event()

    def stream_heartbeats(self, user_id: str) -> Iterator[list[dict[str, Any]]]:
        try:
            for n in range(self.blocks):
                record: dict[str, Any] = dict.fromkeys(Heartbeat.model_fields)
                record.update(
                    event_id=f"id{n}",
                    time=1711792800.0 + n,
                    local_date=date(2024, 3, 30),
                    entity=f"/src/{n}.py",
                    dependencies=[],
                    is_write=False,
                )
                yield [record]
            raise self.error
        finally:
            self.closed.set()

    def _read(self) -> Any:
        if not self.blocks:
            raise self.error
        return []

    def stream_deletions(self, user_id: str) -> Iterator[list[tuple[date, str, float]]]:
        yield from self._read()

    def daily_rows(self, user_id: str, start: date, end: date) -> Any:
        return self._read()

    def weekly_rows_of(self, user_id: str) -> Any:
        return self._read()

    def leaderboard_member(self, user_id: str) -> None:
        self._read()

    def account_events_of(self, user_ids: Any) -> dict[str, list[tuple[int, str]]]:
        return dict(self._read())


class NoAccounts:
    def __getattr__(self, name: str) -> Any:
        # keys_of, sessions_of, users, ...: nothing, whatever is asked
        if name == "plugins":
            return PluginCatalog()
        if name == "themes":
            return ThemeCatalog()
        return lambda *_: None if name == "key_last_used" else []


@contextmanager
def serving(store: FailingStore) -> Iterator[str]:
    user = User("u1", "ada", "UTC", 1711792800.0)

    async def authenticate(request: Request) -> Principal:
        return Principal(user, "jwt")

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(build_export_router(authenticate, NoAccounts(), store))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: _assert(server.started), timeout_s=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _assert(condition: bool) -> None:
    assert condition


@pytest.mark.parametrize("path", EXPORTS)
def test_store_unavailable_before_the_first_byte_is_a_503(path: str) -> None:
    store = FailingStore(0, ProjectionStoreUnavailable("down"))
    with serving(store) as url:
        response = httpx.get(url + path)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["retry-after"] == "5"


@pytest.mark.parametrize("path", EXPORTS)
def test_store_failing_mid_download_cuts_the_connection(path: str) -> None:
    store = FailingStore(3, ProjectionStoreUnavailable("gone"))
    with serving(store) as url, httpx.stream("GET", url + path) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):  # no final chunk: incomplete
            response.read()

    assert store.closed.is_set()
