"""The internal channel between serve and its hook process, on its real parts: a Unix socket, the
embedded log on SQLite, plugin SQL on chdb, the in-process live channel.

What it must hold: no secret, no service (refused before anything is read); only the hook group's
offsets are committed; the server runs one read-only SELECT of our tables and nothing else, even
when the sender skips scoping; a scoped query still reads the caller's rows only; appends are
durable in the log before they are answered; a follower reads the owner's file from its own
connections.
"""

from __future__ import annotations

import asyncio
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codetrackr.hook_channel import (
    ChannelClosed,
    ChannelLive,
    ChannelLogWrites,
    ChannelQueries,
    HookChannelClient,
    HookChannelServer,
    HookProcessProbe,
)
from eventlog.embedded import SqliteEventLog
from eventlog.embedded.follower import SqliteLogFollower
from eventlog.port import LogUnavailable, Record, TopicPartition
from live.inprocess import InProcessLiveChannel
from live.port import user_channel
from plugins_runtime.sql_executor import ClickHousePluginQueries, prepare_query
from plugins_runtime.sql_scope import PluginSqlRefused
from plugins_runtime.wire import frame
from processors.plugin_hooks import HOOKS_GROUP
from projections.clickhouse import ClickHouseProjectionStore
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC
from tests.integration import test_clickhouse_store as store_tests
from tests.support.store_rows import epoch, make_heartbeat

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url

SECRET = bytes(range(32))


@dataclass
class Engine:
    url: str
    database: str


@pytest.fixture(scope="module")
def engine(chdb_url: str) -> Iterator[Engine]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = ClickHouseProjectionStore(chdb_url, database=database)
    store.migrate()
    store.insert_heartbeats(
        [
            make_heartbeat("a1", epoch(10), user_id="alice", project="core", duration=60.0),
            make_heartbeat("b1", epoch(10), user_id="bob", project="bob-secret", duration=9.0),
        ]
    )
    yield Engine(chdb_url, database)
    store.close()


@dataclass
class Served:
    server: HookChannelServer
    log: SqliteEventLog
    live: InProcessLiveChannel
    path: Path


@pytest.fixture
async def served(tmp_path: Path, engine: Engine) -> AsyncIterator[Served]:
    log = SqliteEventLog(tmp_path / "eventlog.sqlite")
    await log.start()
    await log.ensure_topics({HEARTBEATS_TOPIC: 2, ACCOUNTS_TOPIC: 1})
    live = InProcessLiveChannel()
    await live.start()
    queries = ClickHousePluginQueries(engine.url, engine.database)
    path = tmp_path / "hooks.sock"
    server = HookChannelServer(
        path,
        SECRET,
        log=log,
        queries=queries,
        live=live,
        probe=HookProcessProbe(),
        appends=log.appends,
    )
    await server.start()
    try:
        yield Served(server, log, live, path)
    finally:
        await server.close()
        queries.close()
        await live.close()
        await log.close()


async def connected(served: Served) -> HookChannelClient:
    client = HookChannelClient(served.path, SECRET)
    await client.connect()
    return client


async def test_the_socket_is_private_and_a_wrong_or_missing_secret_is_refused(
    served: Served,
) -> None:
    assert stat.S_IMODE(served.path.stat().st_mode) == 0o600
    with pytest.raises(ChannelClosed):
        await HookChannelClient(served.path, b"\x00" * 32).connect()
    # A peer that sends a request without the handshake is refused the same way, unserved.
    reader, writer = await asyncio.open_unix_connection(str(served.path))
    writer.write(frame({"op": "append", "id": 1, "records": [["codetrackr.accounts", "", ""]]}))
    await writer.drain()
    answer = await reader.read()
    assert b"refused" in answer
    assert b"answer" not in answer
    writer.close()
    assert served.server.refused == 2
    ends = await served.log.end_offsets(ACCOUNTS_TOPIC)
    assert sum(ends.values()) == 0  # nothing was appended


async def test_appends_and_hook_group_commits_reach_the_log_a_follower_reads(
    served: Served,
) -> None:
    client = await connected(served)
    writes = ChannelLogWrites(client)
    follower = SqliteLogFollower(served.log.path, writes)
    await follower.start()
    try:
        await follower.append([Record(ACCOUNTS_TOPIC, b"u1", b'{"x":1}')])
        # Durable in the owner's log when answered, and readable from the follower's file.
        assert (await served.log.end_offsets(ACCOUNTS_TOPIC))[
            TopicPartition(ACCOUNTS_TOPIC, 0)
        ] == 1
        reader = follower.reader([ACCOUNTS_TOPIC, HEARTBEATS_TOPIC], group=HOOKS_GROUP)
        await reader.start()
        records = await reader.fetch(10, 1.0)
        assert [(r.key, r.value) for r in records] == [(b"u1", b'{"x":1}')]
        await reader.commit({TopicPartition(ACCOUNTS_TOPIC, 0): 1})
        await reader.close()
        again = served.log.reader([ACCOUNTS_TOPIC, HEARTBEATS_TOPIC], group=HOOKS_GROUP)
        await again.start()
        assert (await again.positions())[TopicPartition(ACCOUNTS_TOPIC, 0)] == 1
        await again.close()
        # Only the hook processor's group: no other group's position can be moved.
        with pytest.raises(LogUnavailable):
            await writes.commit("codetrackr-projections", {TopicPartition(HEARTBEATS_TOPIC, 0): 5})
    finally:
        await follower.close()
        await client.close()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO {db}.heartbeats (user_id) VALUES ('x')",
        "DROP TABLE {db}.heartbeats",
        "ALTER TABLE {db}.heartbeats DELETE WHERE 1",
        "SELECT * FROM file('/etc/passwd')",
        "SELECT * FROM system.tables",
        "SELECT user_id FROM {db}.heartbeats; DROP TABLE {db}.heartbeats",
        "SELECT * FROM url('http://127.0.0.1:9/')",
    ],
)
async def test_the_server_runs_no_sql_but_one_select_of_our_tables(
    served: Served, engine: Engine, sql: str
) -> None:
    client = await connected(served)
    try:
        answer = await client.call(
            "query", sql=sql.format(db=engine.database), parameters={"_uid": "alice"}
        )
    finally:
        await client.close()
    assert answer.get("error") == "sql_refused", answer
    store = ClickHouseProjectionStore(engine.url, database=engine.database)
    try:
        assert "heartbeats" in store.table_names()
    finally:
        store.close()


async def test_scoped_queries_through_the_channel_read_the_callers_rows_only(
    served: Served, engine: Engine
) -> None:
    client = await connected(served)
    queries = ChannelQueries(client, engine.database)
    try:
        mine = await asyncio.to_thread(
            queries.query, "alice", "SELECT project FROM heartbeats WHERE user_id = $1", ["alice"]
        )
        theirs = await asyncio.to_thread(
            queries.query, "alice", "SELECT project FROM heartbeats WHERE user_id = $1", ["bob"]
        )
        everything = await asyncio.to_thread(
            queries.query, "alice", "SELECT project FROM heartbeats", []
        )
        with pytest.raises(PluginSqlRefused):  # refused in the hook process already
            await asyncio.to_thread(queries.query, "alice", "DELETE FROM heartbeats", [])
    finally:
        await client.close()
    assert mine == [{"project": "core"}]
    assert theirs == []
    assert everything == [{"project": "core"}]
    # What the hook process sends is the scoped SQL: run as is, it is confined to its user too.
    sql, parameters = prepare_query("bob", "SELECT project FROM heartbeats", [], database="x")
    assert "bob" not in sql
    assert parameters["_uid"] == "bob"


async def test_published_messages_reach_the_servers_live_channel(served: Served) -> None:
    subscription = await served.live.subscribe(user_channel("alice"))
    client = await connected(served)
    try:
        ChannelLive(client).publish_threadsafe(
            user_channel("alice"), {"type": "plugin.event", "plugin": "p", "data": {"n": 1}}
        )
        message = await asyncio.wait_for(anext(subscription), 5)
    finally:
        await client.close()
        subscription.close()
    assert message["type"] == "plugin.event"
    assert message["data"] == {"n": 1}


async def test_reports_reach_the_probe_and_counts_survive_a_restart(served: Served) -> None:
    probe = HookProcessProbe()
    report = {
        "alive": True,
        "failure": None,
        "counts": {"fired": 3, "failed": 1, "suspended": 0, "batches": 2, "batch_records": 7},
        "outcomes": {"ok": 3, "error": 1},
        "lag": {"codetrackr.heartbeats/0": 4},
        "lag_records": 4,
    }
    probe.update(report)
    assert (probe.fired, probe.failed, probe.health.alive) == (3, 1, True)
    assert await probe.lag_records() == 4
    probe.lost("the hook process exited with status -9; restarting", restarting=True)
    assert not probe.health.alive
    assert probe.health.restarts == 1
    with pytest.raises(LogUnavailable):
        await probe.lag_records()
    probe.update({**report, "counts": {"fired": 2}, "outcomes": {"ok": 2}})
    assert probe.fired == 5
    assert probe.outcomes["ok"] == 5
    assert probe.health.batches == 2


async def test_the_server_tells_the_hook_process_when_the_log_stored_records(
    served: Served,
) -> None:
    """So a follower's reader fetches at once rather than at its next poll of the file."""
    client = await connected(served)
    told = asyncio.Event()
    client.on_appended = told.set
    try:
        await asyncio.sleep(0)  # the server's watch is running
        assert not told.is_set()
        await served.log.append([Record(HEARTBEATS_TOPIC, b"u1", b"{}")])
        await asyncio.wait_for(told.wait(), 10)
    finally:
        await client.close()
