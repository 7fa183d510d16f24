"""Plugin hooks fired by a real ``codetrackr serve``: the seed's streak notifier published and
installed through the store's routes, observed through its RPC and the key-value store's SQLite
file; and no heartbeat's hook lost to a ``kill -9`` in the middle of them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from plugins_runtime.kv_factory import SQLITE_FILE_NAME
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
  'reset-streak': async (ctx, req) => {
    await ctx.redis.set('streak', '0');
    await ctx.redis.set('last-day', '');
    log('Streak reset by user', ctx.user_id);
    return { ok: true };
  },
};
"""
ENV = {"CODETRACKR_PLUGIN_PUBLISH": "any"}
# Counts every call, and every heartbeat once by its id (a redelivered one is seen again).
TALLY = """
async function on_heartbeat(ctx, hb) {
  await ctx.redis.incr('calls');
  await ctx.redis.set('seen:' + hb.id, String(hb.time));
}
"""


def publish_and_install(user: Client, name: str, script: str) -> None:
    body = {"name": name, "display_name": name, "server_script": script}
    published = user.http.post("/api/v1/store/publish", headers=user.bearer, json=body)
    assert published.status_code == 201, published.text
    installed = user.http.post(f"/api/v1/store/install/{name}", headers=user.bearer)
    assert installed.status_code == 201, installed.text


def rpc(user: Client, name: str, handler: str) -> Any:
    answer = user.http.post(f"/api/v1/plugins/{name}/rpc/{handler}", headers=user.bearer)
    assert answer.status_code == 200, answer.text
    return answer.json()


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


def test_streak_notifier_installs_counts_and_ticks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = CodeTrackrProcess(
        "serve", data, env={**ENV, "CODETRACKR_PLUGIN_TICK_INTERVAL_S": "1"}
    ).start()
    try:
        user = Client(server.url)
        user_id = user_id_of(user)
        publish_and_install(user, "streak-notifier", STREAK_NOTIFIER)
        # on_install set the streak to 0 and the day to '' (no heartbeat yet: no tick counts).
        eventually(lambda: _equal(kv_of(data, "streak-notifier", user_id).get("last-day"), ""))
        assert rpc(user, "streak-notifier", "get-streak") == {"streak": 0, "last_day": None}

        beat = {"project": "streak", "file": "a.py", "time": time.time() - 30}
        response = user.http.post("/api/v1/heartbeats", json=[beat], headers=user.key_header)
        assert response.status_code == 200, response.text
        today = time.strftime("%Y-%m-%d", time.gmtime())
        # on_heartbeat marks today (or a tick counted the day first and marked it).
        eventually(lambda: _equal(rpc(user, "streak-notifier", "get-streak")["last_day"], today))

        # Today unmarked again: the next tick finds today's heartbeat with the plugin's SQL and
        # counts a day of streak.
        assert rpc(user, "streak-notifier", "reset-streak") == {"ok": True}
        eventually(
            lambda: _equal(
                rpc(user, "streak-notifier", "get-streak"), {"streak": 1, "last_day": today}
            )
        )
        ready = user.http.get("/readyz").json()
        names = [p["name"] for p in ready["checks"]["projector"]["projectors"]]
        assert "plugin-hooks" in names
    finally:
        server.stop()


def test_kill_9_during_hooks_loses_no_heartbeat(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = CodeTrackrProcess("serve", data, env=ENV).start()
    user = Client(server.url)
    user_id = user_id_of(user)
    publish_and_install(user, "tally", TALLY)
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

    server = CodeTrackrProcess("serve", data, env=ENV, port=server.port).start()
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
