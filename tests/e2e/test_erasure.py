"""Deleting an account, and a range of activity, on a real ``codetrackr serve``.

Alice has everything an account can have: heartbeats (one deleted), keys, sessions, a public
profile on the leaderboard, follows both ways, hire inquiries received and sent, a username
somebody else tried to take. She deletes her account. Afterwards no ClickHouse table (every one
of them is listed) and no record of the embedded log holds her id or her name, but the erasure
ledger, which holds her id and nothing else, the API knows nothing of her, and none of that
changes across a restart or a replay. Bob erases one range of
his activity: it is gone from his stats, his export and the log, and the rest stays.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.e2e.harness import (
    Client,
    CodeTrackrProcess,
    eventually,
    query_scalar,
    run_cli,
    snapshot_tables,
)
from tests.integration.test_erasure_projection import TABLES

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

LEDGER_COLUMNS = (
    "user_id,erasure_id,range_start,range_end,log_topic,log_partition,log_offset,"
    "occurred_at,projected_at"
)

HOUR = 3600.0


@dataclass
class World:
    data: Path
    server: CodeTrackrProcess
    alice: Client
    bob: Client
    carol: Client
    alice_id: str
    bob_id: str
    old: list[float]  # bob's heartbeat times in the range he erases
    recent: list[float]  # bob's heartbeat times after it


def send(user: Client, times: list[float], project: str) -> list[str]:
    items = [
        {"entity": f"/{project}/x.py", "type": "file", "time": t, "project": project} for t in times
    ]
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=items, headers=user.key_header
    )
    assert sent.status_code == 201, sent.text
    return [data["data"]["id"] for data, _ in sent.json()["responses"]]


def export(user: Client) -> list[dict[str, Any]]:
    response = user.http.get("/api/v1/export/json", headers=user.bearer)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


def public(user: Client, **flags: Any) -> None:
    body = {"is_public": True, "show_in_leaderboard": True, "available_for_hire": True, **flags}
    changed = user.http.post("/api/v1/user/profile/update", headers=user.bearer, json=body)
    assert changed.status_code == 200, changed.text


def board(server: CodeTrackrProcess) -> list[str]:
    response = httpx.get(f"{server.url}/api/v1/leaderboards/global", timeout=30)
    assert response.status_code == 200, response.text
    return [entry["username"] for entry in response.json()["leaderboard"]]


def log_records(data: Path) -> list[tuple[str, bytes, bytes]]:
    """Every record of the embedded log, read beside the running server (SQLite, WAL)."""
    conn = sqlite3.connect(f"file:{data / 'eventlog.sqlite'}?mode=ro", uri=True)
    try:
        return [
            (str(topic), bytes(key), bytes(value))
            for topic, key, value in conn.execute("SELECT topic, key, value FROM records")
        ]
    finally:
        conn.close()


def mentions(records: list[tuple[str, bytes, bytes]], needle: str) -> list[tuple[str, bytes]]:
    return [(t, v[:200]) for t, k, v in records if needle.encode() in k or needle.encode() in v]


def heartbeat_times(records: list[tuple[str, bytes, bytes]], user_id: str) -> list[float]:
    times = []
    for topic, key, value in records:
        event = json.loads(value)
        if topic == "codetrackr.heartbeats" and key == user_id.encode():
            times += [hb["time"] for hb in event.get("heartbeats", ())]
    return sorted(times)


def close_code(ws: ClientConnection) -> int | None:
    """The code the server closes ``ws`` with, past any messages still on their way."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=deadline - time.monotonic())
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None
    raise AssertionError("the socket stayed open")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("erasure") / "data"
    server = CodeTrackrProcess("serve", data).start()
    try:
        alice, bob, carol = (Client(server.url) for _ in range(3))
        for user in (alice, bob, carol):
            public(user)
        alice_id = alice.get("/api/v1/user/me")["id"]
        bob_id = bob.get("/api/v1/user/me")["id"]
        now = time.time()
        alice_ids = send(alice, [now - 600 + 60 * i for i in range(5)], "secret-project")
        old = [now - 30 * 86400 + 60 * i for i in range(5)]
        recent = [now - 300 + 60 * i for i in range(3)]
        send(bob, old + recent, "bobs")
        send(carol, recent, "carols")
        deleted = alice.http.request(
            "DELETE",
            "/api/v1/users/current/heartbeats.bulk",
            json={
                "date": datetime.fromtimestamp(now - 600, UTC).date().isoformat(),
                "ids": alice_ids[:1],
            },
            headers=alice.key_header,
        )
        assert deleted.status_code == 202, deleted.text
        for follower, followed in ((bob, alice), (alice, bob), (carol, alice)):
            followed_ = follower.http.post(
                f"/api/v1/user/follow/{followed.username}", headers=follower.bearer
            )
            assert followed_.status_code == 200, followed_.text
        for sender, recipient in ((carol, alice), (alice, bob)):
            sent = sender.http.post(
                f"/api/v1/user/contact/{recipient.username}",
                headers=sender.bearer,
                json={"name": "Hiring", "email": "hr@example.com", "message": "Work with us?"},
            )
            assert sent.status_code == 200, sent.text
        # A rejected claim on alice's name stays in the log: it must not win after the purge.
        taken = bob.http.post(
            "/api/v1/user/profile/update", headers=bob.bearer, json={"username": alice.username}
        )
        assert taken.status_code == 409, taken.text
        eventually(lambda: _ranked(server, alice, bob, carol), timeout_s=60)
        yield World(data, server, alice, bob, carol, alice_id, bob_id, old, recent)
    finally:
        server.stop()


def _ranked(server: CodeTrackrProcess, *users: Client) -> None:
    names = board(server)
    assert all(user.username in names for user in users), names


def test_deleting_needs_a_login_token_and_the_username(world: World) -> None:
    alice = world.alice
    by_key = alice.http.request(
        "DELETE", "/api/v1/user/me", headers=alice.key_header, json={"confirm": alice.username}
    )
    assert by_key.status_code == 401, by_key.text
    wrong = alice.http.request(
        "DELETE", "/api/v1/user/me", headers=alice.bearer, json={"confirm": "someone-else"}
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "confirmation_required"
    missing = alice.http.request("DELETE", "/api/v1/user/me", headers=alice.bearer, json={})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "validation_error"
    anonymous = httpx.request(
        "DELETE", f"{world.server.url}/api/v1/user/me", json={"confirm": alice.username}
    )
    assert anonymous.status_code == 401
    assert alice.get("/api/v1/user/me")["username"] == alice.username  # nothing changed


def test_a_range_erasure_removes_only_that_range(world: World) -> None:
    bob = world.bob
    assert len(export(bob)) == len(world.old) + len(world.recent)
    start = datetime.fromtimestamp(world.old[0] - HOUR, UTC).isoformat()
    end = datetime.fromtimestamp(world.old[-1] + HOUR, UTC).isoformat()
    bad = bob.http.post(
        "/api/v1/user/data/delete", headers=bob.bearer, json={"start": end, "end": start}
    )
    assert bad.status_code == 400
    for body in (
        {"start": "1900-01-01", "end": "2026-01-01"},
        {"start": "2026-01-01", "end": "9999-12-31"},
        {"start": "2026-01-01"},
        {"start": "2026-01-01T10:00:00", "end": "2026-01-02T10:00:00"},  # no offset
        {"start": "2026-01-01", "end": "2026-01-02", "extra": 1},
    ):
        refused = bob.http.post("/api/v1/user/data/delete", headers=bob.bearer, json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["error"]["code"] == "validation_error"
    by_key = bob.http.post(
        "/api/v1/user/data/delete", headers=bob.key_header, json={"start": start, "end": end}
    )
    assert by_key.status_code == 401

    erased = bob.http.post(
        "/api/v1/user/data/delete", headers=bob.bearer, json={"start": start, "end": end}
    )

    assert erased.status_code == 202, erased.text
    assert erased.json()["data"]["status"] == "erasing"

    def gone() -> None:
        assert sorted(r["time"] for r in export(bob)) == pytest.approx(world.recent)
        assert heartbeat_times(log_records(world.data), world.bob_id) == pytest.approx(world.recent)

    eventually(gone, timeout_s=60)
    day = datetime.fromtimestamp(world.old[0], UTC).date().isoformat()
    summaries = bob.get("/api/v1/users/current/summaries", start=day, end=day)
    assert summaries["cumulative_total"]["seconds"] == 0
    assert bob.username in board(world.server)  # this week's time is untouched


def test_deleting_the_account_removes_it_everywhere(world: World) -> None:
    alice, bob, carol = world.alice, world.bob, world.carol
    assert mentions(log_records(world.data), world.alice_id)  # the check below can fail
    ticket = alice.http.post("/api/v1/ws-ticket", headers=alice.bearer).json()["ticket"]
    with connect(f"ws://127.0.0.1:{world.server.port}/ws?ticket={ticket}") as dashboard:
        assert json.loads(dashboard.recv(timeout=10))["type"] == "subscribed"

        deleted = alice.http.request(
            "DELETE", "/api/v1/user/me", headers=alice.bearer, json={"confirm": alice.username}
        )

        assert deleted.status_code == 202, deleted.text
        # Her open dashboard is closed too, not left streaming.
        assert close_code(dashboard) == 1008
    assert deleted.json()["data"]["status"] == "deleted"
    # Gone at once: credentials, profile, follows, messages; the name is free again.
    assert alice.http.get("/api/v1/user/me", headers=alice.bearer).status_code == 401
    assert alice.http.get("/api/v1/user/me", headers=alice.key_header).status_code == 401
    login = alice.http.post("/auth/anonymous/login", json={"account_number": alice.account_number})
    assert login.status_code == 401
    profile = httpx.get(f"{world.server.url}/api/v1/user/profile/{alice.username}")
    assert profile.status_code == 404
    assert bob.get("/api/v1/user/following")["following"] == []
    assert bob.get("/api/v1/user/followers")["followers"] == []
    assert bob.get("/api/v1/user/contact")["messages"] == []
    eventually(lambda: _not_ranked(world.server, alice), timeout_s=60)

    def purged() -> None:
        assert mentions(log_records(world.data), world.alice_id) == []

    eventually(purged, timeout_s=60)
    records = log_records(world.data)
    assert mentions(records, alice.username) == []
    assert heartbeat_times(records, world.bob_id) == pytest.approx(world.recent)
    renamed = carol.http.post(
        "/api/v1/user/profile/update", headers=carol.bearer, json={"username": alice.username}
    )
    assert renamed.status_code == 200, renamed.text


def _not_ranked(server: CodeTrackrProcess, user: Client) -> None:
    assert user.username not in board(server)


def test_nothing_of_the_account_is_left_in_any_table_after_restart_and_replay(
    world: World,
) -> None:
    url = f"chdb://{(world.data / 'clickhouse').resolve()}"
    world.server.stop()
    tables = snapshot_tables(url)
    # Every projection table is listed, and each is checked whole, not only by user_id.
    assert set(tables) >= TABLES
    for name, rows in tables.items():
        dump = json.dumps(rows)
        assert world.alice_id not in dump, name
        assert "secret-project" not in dump, name
    assert world.bob_id in json.dumps(tables["heartbeats"])  # the others' data is still there
    assert mentions(log_records(world.data), world.alice_id) == []
    # The erasure ledger keeps her id, which keeps her erased, and can hold nothing else of hers.
    ledger = f"SELECT count() FROM codetrackr.erasures WHERE user_id = '{world.alice_id}'"
    assert int(query_scalar(url, ledger)) >= 1
    columns = query_scalar(
        url,
        "SELECT arrayStringConcat(groupArray(name), ',') FROM (SELECT name FROM system.columns"
        " WHERE database = 'codetrackr' AND table = 'erasures' ORDER BY position)",
    )
    assert columns == LEDGER_COLUMNS

    output = run_cli(["replay", "--data-dir", str(world.data), "--quiet"])
    assert "replayed" in output
    assert snapshot_tables(url) == tables

    world.server.start()
    alice, bob = world.alice, world.bob
    assert alice.http.get("/api/v1/user/me", headers=alice.key_header).status_code == 401
    # The refold from the purged log keeps every decision: carol holds the name, bob's own.
    holder = httpx.get(f"{world.server.url}/api/v1/user/profile/{alice.username}")
    assert holder.status_code == 200
    assert holder.json()["username"] == alice.username
    assert bob.get("/api/v1/user/me")["username"] == bob.username
    assert sorted(r["time"] for r in export(bob)) == pytest.approx(world.recent)
