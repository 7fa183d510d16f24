"""A plugin bound to our data (``plugin_host``): the real QuickJS engine, ClickHouse (chdb), the
embedded log folded by an account directory, and the embedded key-value store.

Two users installed the same plugin; every call runs for ada, and bob's rows, keys and counters
must never reach her execution, whatever the plugin's SQL says.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from accounts.directory import AccountDirectory, new_event_id
from accounts.plugins import StorePlugin
from api.routes.account_forms import profile_changes
from eventlog.embedded import SqliteEventLog
from plugin_host.executor import PluginExecutor, PluginHostUnavailable
from plugins_runtime import HookCall, LifecycleHook, PluginSandbox, RpcCall, SandboxOk
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue
from plugins_runtime.sql_executor import ClickHousePluginQueries
from projections.clickhouse import ClickHouseProjectionStore
from schemas.events import (
    ACCOUNTS_TOPIC,
    AccountCreated,
    AccountEvent,
    ApiKeyCreated,
    PluginInstalled,
    PluginPublished,
)
from tests.support import clickhouse_fixtures
from tests.support.store_rows import make_heartbeat

pytestmark = [pytest.mark.clickhouse, pytest.mark.quickjs]
chdb_url = clickhouse_fixtures.chdb_url

ADA, BOB = "user-ada", "user-bob"
SCRIPT = """
async function on_heartbeat(ctx, heartbeat) {
  await ctx.redis.incr('beats');
}
const endpoints = {
  'mine': async (ctx) => ({
    keys: await ctx.db.query('SELECT id, name FROM api_keys', []),
    tampered: await ctx.db.query('SELECT id FROM api_keys WHERE user_id = $1', ['user-bob']),
    projects: await ctx.db.query('SELECT DISTINCT project FROM heartbeats ORDER BY project', []),
    users: await ctx.db.query('SELECT id, username FROM users', []),
    store: await ctx.db.query(
      'SELECT p.name, p.install_count FROM installed_plugins i JOIN plugin_store p ' +
      'ON p.id = i.plugin_id', []),
    beats: await ctx.redis.get('beats'),
  }),
  'settings': async (ctx, req) => {
    await ctx.db.query(
      `INSERT INTO plugin_settings (user_id, plugin, settings)
       VALUES ($1, $2, $3)
       ON CONFLICT (user_id, plugin) DO NOTHING`,
      [ctx.user_id, 'counter', JSON.stringify({ notify: true, threshold: 3600 })]);
    await ctx.db.query(
      `UPDATE plugin_settings SET settings = settings || $1
       WHERE user_id = $2 AND plugin = $3`,
      [JSON.stringify({ threshold: req.threshold }), ctx.user_id, 'counter']);
    const rows = await ctx.db.query(
      'SELECT settings FROM plugin_settings WHERE user_id = $1 AND plugin = $2',
      [ctx.user_id, 'counter']);
    return JSON.parse(rows[0].settings);
  },
  'again': async (ctx) => {
    try {
      await ctx.db.query(
        'INSERT INTO plugin_settings (user_id, plugin, settings) VALUES ($1, $2, $3)',
        [ctx.user_id, 'counter', '{}']);
      return 'inserted';
    } catch (e) { return e.message; }
  },
  'others': async (ctx) => {
    const out = [];
    for (const [sql, params] of [
      ['DELETE FROM api_keys WHERE id = $1', ['key-of-user-bob']],
      ['UPDATE plugin_settings SET settings = $1 WHERE user_id = $2 AND plugin = $3',
       ['{}', 'user-bob', 'counter']],
      ['UPDATE users SET bio = $1 WHERE id = $2', ['hi', ctx.user_id]],
      ['DELETE FROM users WHERE id = $1', [ctx.user_id]],
    ]) {
      try { await ctx.db.query(sql, params); out.push('ok'); }
      catch (e) { out.push(e.message.split(':')[0]); }
    }
    return out;
  },
  'hashes': async (ctx) => {
    try { return await ctx.db.query('SELECT key_hash FROM api_keys', []); }
    catch (e) { return 'refused: ' + e.message; }
  },
};
"""


@dataclass
class Bound:
    executor: PluginExecutor
    directory: AccountDirectory
    kv: SqlitePluginKeyValue
    plugin: StorePlugin
    log: SqliteEventLog
    sandbox: PluginSandbox
    queries: ClickHousePluginQueries


@pytest.fixture
async def bound(chdb_url: str, tmp_path: Path) -> AsyncIterator[Bound]:
    database = f"plugin_host_{uuid.uuid4().hex[:8]}"
    store = ClickHouseProjectionStore(chdb_url, database=database)
    store.migrate()
    store.insert_heartbeats(
        [
            make_heartbeat("hb-ada", 1_700_000_000, user_id=ADA, project="ada-project"),
            make_heartbeat("hb-bob", 1_700_000_000, user_id=BOB, project="bob-project"),
        ]
    )
    log = SqliteEventLog(tmp_path / "log.sqlite")
    await log.start()
    await log.ensure_topics({ACCOUNTS_TOPIC: 1})
    directory = AccountDirectory(log)
    await directory.start()
    events: list[AccountEvent] = []
    for user in (ADA, BOB):
        events += [
            AccountCreated(event_id=new_event_id(), user_id=user, occurred_at=1, username=user),
            ApiKeyCreated(
                event_id=new_event_id(),
                user_id=user,
                occurred_at=2,
                key_id=f"key-of-{user}",
                name="editor",
                key_hash=f"hash-of-{user}",
                key_prefix="ct_",
            ),
        ]
    events.append(
        PluginPublished(
            event_id=new_event_id(),
            user_id=BOB,
            occurred_at=3,
            name="counter",
            display_name="Counter",
            server_script=SCRIPT,
        )
    )
    events += [
        PluginInstalled(event_id=new_event_id(), user_id=user, occurred_at=4, name="counter")
        for user in (ADA, BOB)
    ]
    for event in events:
        assert await directory.record(event)
    kv = SqlitePluginKeyValue(tmp_path / "kv.sqlite3")
    await kv.start()
    sandbox = PluginSandbox(workers=2)
    queries = ClickHousePluginQueries(chdb_url, database)
    plugin = directory.plugins.plugin("counter")
    assert plugin is not None
    executor = PluginExecutor(sandbox, directory, queries, kv, base_url="http://test")
    try:
        yield Bound(executor, directory, kv, plugin, log, sandbox, queries)
    finally:
        sandbox.close()
        queries.close()
        await kv.close()
        await directory.close()
        await log.close()
        store.close()


async def test_a_plugin_sees_only_its_users_rows_and_keys(bound: Bound) -> None:
    for user, times in ((ADA, 2), (BOB, 5)):
        for _ in range(times):
            run = await bound.executor.run(
                bound.plugin, user, HookCall(LifecycleHook.ON_HEARTBEAT, {"project": "x"})
            )
            assert isinstance(run, SandboxOk), run

    result = await bound.executor.run(bound.plugin, ADA, RpcCall("mine"))

    assert isinstance(result, SandboxOk), result
    assert result.result == {
        "keys": [{"id": "key-of-user-ada", "name": "editor"}],
        "tampered": [],
        "projects": [{"project": "ada-project"}],
        "users": [{"id": ADA, "username": ADA}],
        "store": [{"name": "counter", "install_count": 2}],
        "beats": "2",
    }
    assert await bound.kv.dump_user(BOB) == {"counter": {"beats": "5"}}


async def test_key_hashes_are_refused_with_a_clear_message(bound: Bound) -> None:
    result = await bound.executor.run(bound.plugin, ADA, RpcCall("hashes"))

    assert isinstance(result, SandboxOk), result
    assert isinstance(result.result, str)
    assert result.result.startswith("refused: secret_column")
    assert "hash-of" not in result.result


async def test_an_unreachable_key_value_store_is_ours_to_retry_not_the_plugins(
    bound: Bound,
) -> None:
    await bound.kv.close()

    with pytest.raises(PluginHostUnavailable):
        await bound.executor.run(
            bound.plugin, ADA, HookCall(LifecycleHook.ON_HEARTBEAT, {"project": "x"})
        )


async def test_plugin_writes_are_events_the_fold_applies_and_a_refold_rebuilds(
    bound: Bound,
) -> None:
    settings = await bound.executor.run(bound.plugin, ADA, RpcCall("settings", {"threshold": 7200}))
    assert isinstance(settings, SandboxOk), settings
    assert settings.result == {"notify": True, "threshold": 7200}
    again = await bound.executor.run(bound.plugin, ADA, RpcCall("again"))
    assert isinstance(again, SandboxOk)
    assert isinstance(again.result, str)
    assert again.result.startswith("duplicate key value")

    others = await bound.executor.run(bound.plugin, ADA, RpcCall("others"))

    assert isinstance(others, SandboxOk), others
    # bob's key is no row of ada's: nothing deleted, no error; another user's settings row is
    # refused; profile writes are off without the profile rules; accounts are never deleted.
    assert others.result == ["ok", "not_own_row", "users", "write_not_allowed"]
    assert "key-of-user-bob" in bound.directory.state.keys_by_id
    row = bound.directory.plugins.settings[(ADA, "counter")]
    assert row.settings == {"notify": True, "threshold": 7200}
    # The writes are on the log: a directory folding it from scratch holds the same settings.
    fresh = AccountDirectory(bound.log)
    await fresh.start()
    try:
        assert fresh.plugins.settings == bound.directory.plugins.settings
    finally:
        await fresh.close()


async def test_profile_writes_go_through_the_profile_rules(bound: Bound) -> None:
    executor = PluginExecutor(
        bound.sandbox,
        bound.directory,
        bound.queries,
        bound.kv,
        base_url="http://test",
        validate_profile=profile_changes,
    )
    plugin = dataclasses.replace(
        bound.plugin,
        server_script="""
        const endpoints = { 'set': async (ctx, req) => {
          try {
            await ctx.db.query('UPDATE users SET ' + req.field + ' = $1 WHERE id = $2',
                               [req.value, ctx.user_id]);
            return 'ok';
          } catch (e) { return e.message; }
        } };
        """,
    )

    async def update(field: str, value: object) -> object:
        result = await executor.run(plugin, ADA, RpcCall("set", {"field": field, "value": value}))
        assert isinstance(result, SandboxOk), result
        return result.result

    assert await update("bio", "writes Rust") == "ok"
    assert await update("timeout_minutes", 30) == "ok"
    assert str(await update("timezone", "Mars/Olympus")).startswith("users: timezone")
    assert str(await update("country", "Atlantis")).startswith("users: country")
    user = bound.directory.state.users[ADA]
    assert (user.bio, user.timeout_minutes, user.timezone) == ("writes Rust", 30, "UTC")
