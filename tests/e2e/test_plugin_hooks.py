"""Plugin hooks fired by a real ``codetrackr serve``: the seed's streak notifier, and no heartbeat's
hook lost to a ``kill -9`` in the middle of them.

The plugin store's HTTP routes are not part of this build, so the plugin is published and
installed by appending the store's events to the embedded log while the server is stopped, as
those routes would; what the hooks did is read from the key-value store's SQLite file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from eventlog.embedded import SqliteEventLog
from eventlog.factory import DEFAULT_EMBEDDED_FILE
from eventlog.port import Record
from plugins_runtime.kv_factory import SQLITE_FILE_NAME
from schemas.events import ACCOUNTS_TOPIC, PluginInstalled, PluginPublished, encode_event
from tests.e2e.harness import Client, CodeTrackrProcess, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.quickjs, pytest.mark.slow]

# The seed's streak notifier (docs: "Hooks"), its SQL on our heartbeats relation (`time`, where
# the seed has `recorded_at`).
STREAK_NOTIFIER = """
async function on_install(ctx) {
  await ctx.redis.set('streak', '0');
  await ctx.redis.set('last-day', '');
  log('Streak Notifier installed for', ctx.user_id);
}
async function on_tick(ctx) {
  const today = new Date().toISOString().slice(0, 10);
  const lastDay = await ctx.redis.get('last-day');
  if (lastDay === today) { return; }
  const rows = await ctx.db.query(
    `SELECT 1 FROM heartbeats WHERE user_id = $1 AND time >= NOW() - INTERVAL '1 day' LIMIT 1`,
    [ctx.user_id]);
  if (rows.length > 0) {
    const streak = await ctx.redis.incr('streak');
    await ctx.redis.set('last-day', today);
    log('Day ' + streak + ' of streak - keep it up!');
  } else {
    warn('No activity today - streak at risk!');
  }
}
async function on_heartbeat(ctx, heartbeat) {
  const today = new Date().toISOString().slice(0, 10);
  await ctx.redis.set('last-day', today);
}
const endpoints = {
  'get-streak': async (ctx, req) => {
    const streak = await ctx.redis.get('streak');
    const lastDay = await ctx.redis.get('last-day');
    return { streak: parseInt(streak || '0', 10), last_day: lastDay || null };
  },
};
"""
# Counts every call, and every heartbeat once by its id (a redelivered one is seen again).
TALLY = """
async function on_heartbeat(ctx, hb) {
  await ctx.redis.incr('calls');
  await ctx.redis.set('seen:' + hb.id, String(hb.time));
}
"""


def store_and_install(data: Path, user_id: str, name: str, script: str) -> None:
    """Append a publish and an install of ``name`` by ``user_id`` (the server is stopped)."""

    async def append() -> None:
        log = SqliteEventLog(data / DEFAULT_EMBEDDED_FILE)
        await log.start()
        try:
            now = time.time()
            events = [
                PluginPublished(
                    event_id=uuid.uuid4().hex,
                    user_id=user_id,
                    occurred_at=now,
                    name=name,
                    display_name=name,
                    server_script=script,
                ),
                PluginInstalled(
                    event_id=uuid.uuid4().hex, user_id=user_id, occurred_at=now, name=name
                ),
            ]
            await log.append(
                [Record(ACCOUNTS_TOPIC, user_id.encode(), encode_event(e)) for e in events]
            )
        finally:
            await log.close()

    asyncio.run(append())


def kv_of(data: Path, plugin: str, user_id: str) -> dict[str, str]:
    """The plugin's keys of the user, read from the key-value file (read-only)."""
    path = data / SQLITE_FILE_NAME
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute(
            "SELECT key, value FROM plugin_kv WHERE plugin = ? AND user_id = ?", (plugin, user_id)
        ).fetchall()
    except sqlite3.OperationalError:  # the table is not there yet
        return {}
    finally:
        conn.close()
    return dict(rows)


def user_id_of(user: Client) -> str:
    return str(user.get("/api/v1/user/me")["id"])


def start_with_plugin(data: Path, name: str, script: str, **env: str) -> tuple[Client, str, int]:
    server = CodeTrackrProcess("serve", data, env=env).start()
    try:
        user = Client(server.url)
        user_id = user_id_of(user)
    finally:
        server.stop()
    store_and_install(data, user_id, name, script)
    return user, user_id, server.port


def test_streak_notifier_installs_counts_and_ticks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"CODETRACKR_PLUGIN_TICK_INTERVAL_S": "1"}
    user, user_id, port = start_with_plugin(data, "streak-notifier", STREAK_NOTIFIER, **env)
    server = CodeTrackrProcess("serve", data, env=env, port=port).start()
    try:
        # on_install set the streak to 0 (no heartbeat yet: no tick can count a day).
        eventually(lambda: _equal(kv_of(data, "streak-notifier", user_id).get("streak"), "0"))
        now = time.time()
        beats = [{"project": "streak", "file": "a.py", "time": now - 30 + i} for i in range(3)]
        response = user.http.post("/api/v1/heartbeats", json=beats, headers=user.key_header)
        assert response.status_code == 200, response.text
        today = time.strftime("%Y-%m-%d", time.gmtime())
        # on_heartbeat marks today (a tick may have counted the day first: then it marked it).
        eventually(lambda: _equal(kv_of(data, "streak-notifier", user_id).get("last-day"), today))
        ready = user.http.get("/readyz").json()
        names = [p["name"] for p in ready["checks"]["projector"]["projectors"]]
        assert "plugin-hooks" in names
    finally:
        server.stop()
    streak = int(kv_of(data, "streak-notifier", user_id)["streak"])
    assert streak in (0, 1)
    # Today unmarked again: the next tick finds today's heartbeats with the plugin's SQL and
    # counts a day of streak.
    _clear_last_day(data, user_id)
    server = CodeTrackrProcess("serve", data, env=env, port=port).start()
    try:
        eventually(
            lambda: _equal(kv_of(data, "streak-notifier", user_id).get("streak"), str(streak + 1))
        )
        assert kv_of(data, "streak-notifier", user_id)["last-day"] == today
    finally:
        server.stop()


def _clear_last_day(data: Path, user_id: str) -> None:
    conn = sqlite3.connect(data / SQLITE_FILE_NAME)
    try:
        with conn:
            conn.execute(
                "UPDATE plugin_kv SET value = '' WHERE plugin = ? AND user_id = ? AND key = ?",
                ("streak-notifier", user_id, "last-day"),
            )
    finally:
        conn.close()


def test_kill_9_during_hooks_loses_no_heartbeat(tmp_path: Path) -> None:
    data = tmp_path / "data"
    user, user_id, port = start_with_plugin(data, "tally", TALLY)
    server = CodeTrackrProcess("serve", data, port=port).start()
    now = time.time()
    sent: set[float] = set()
    for request in range(16):
        beats = [
            {"project": "tally", "file": f"f{i}.py", "time": now - 3600 + request * 50 + i}
            for i in range(50)
        ]
        response = user.http.post("/api/v1/heartbeats", json=beats, headers=user.key_header)
        assert response.status_code == 200, response.text
        sent.update(round(float(b["time"]), 3) for b in beats)  # type: ignore[arg-type]
    # Kill while the hooks are under way: some ran, most have not.
    eventually(lambda: _at_least(int(kv_of(data, "tally", user_id).get("calls", "0")), 20))
    server.kill9()
    calls_at_kill = int(kv_of(data, "tally", user_id).get("calls", "0"))
    assert calls_at_kill < len(sent), "the hooks finished before the kill; send more"

    server = CodeTrackrProcess("serve", data, port=port).start()
    try:

        def all_seen() -> dict[str, str]:
            space = kv_of(data, "tally", user_id)
            assert sum(key.startswith("seen:") for key in space) == len(sent)
            return space

        space = eventually(all_seen, timeout_s=120)
    finally:
        server.stop()
    assert {round(float(v), 3) for k, v in space.items() if k.startswith("seen:")} == sent
    assert int(space["calls"]) >= len(sent)  # at least once: a redelivered hook runs again


def _equal(actual: object, expected: object) -> None:
    assert actual == expected, actual


def _at_least(actual: int, minimum: int) -> None:
    assert actual >= minimum, actual
