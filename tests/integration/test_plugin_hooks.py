"""The hook processor over a real embedded log, real QuickJS and chdb: which hooks fire, once or at
least once, failures and suspension, ticks, replays, live messages."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from accounts.directory import AccountDirectory
from accounts.plugins import StorePlugin
from eventlog.embedded import SqliteEventLog
from eventlog.port import LogUnavailable, Record
from live.inprocess import InProcessLiveChannel
from live.port import LivePublisher, user_channel
from plugin_host.executor import PluginExecutor
from plugins_runtime import Invocation, PluginSandbox, SandboxLimits, SandboxResult
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue
from plugins_runtime.sql_executor import ClickHousePluginQueries
from processors.handlers import HeartbeatProjector
from processors.hook_plans import BULK_THRESHOLD
from processors.plugin_hooks import HOOKS_GROUP, HookExecutor, PluginHookProcessor
from processors.replay import replay
from processors.runner import PROJECTIONS_GROUP, ProjectionRunner
from processors.supervision import SupervisionPolicy
from projections.clickhouse import ClickHouseProjectionStore
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    AccountCreated,
    AccountEvent,
    HeartbeatsReceived,
    PluginInstalled,
    PluginModerated,
    PluginPublished,
    PluginUninstalled,
    SessionStarted,
    encode_event,
)
from schemas.live import live_message
from tests.support import clickhouse_fixtures
from tests.support.plugin_kv import ControlledKeyValue
from tests.support.store_inspect import count_heartbeats
from tests.support.store_rows import epoch, make_heartbeat

pytestmark = pytest.mark.quickjs

chdb_url = clickhouse_fixtures.chdb_url

COUNTER = """
async function on_heartbeat(ctx, hb) {
  await ctx.redis.incr('beats');
  await ctx.redis.set('seen:' + hb.id, hb.project + '|' + hb.language + '|' + hb.time);
}
async function on_heartbeats_bulk(ctx, e) {
  await ctx.redis.incr('bulk');
  await ctx.redis.set('bulk-count', String(e.count));
}
async function on_install(ctx) { await ctx.redis.incr('installs'); }
async function on_user_login(ctx, e) { await ctx.redis.set('login', JSON.stringify(e)); }
async function on_tick(ctx) { return { ticks: await ctx.redis.incr('ticks') }; }
"""
FAILING = "async function on_heartbeat(ctx, hb) { throw new Error('boom ' + hb.project); }"
# Its on_heartbeat waits for the test to open the gate (ctx.redis.get('gate') is held).
SLOW = """
async function on_heartbeat(ctx, hb) { await ctx.redis.get('gate'); await ctx.redis.incr('beats'); }
"""


@dataclass
class ManualTimer:
    """The tick timer's sleep: returns when the test fires it, never by itself."""

    asked: list[float] = field(default_factory=list)
    gates: asyncio.Queue[None] = field(default_factory=asyncio.Queue)

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.gates.get()

    def fire(self) -> None:
        self.gates.put_nowait(None)


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


@dataclass
class World:
    log: SqliteEventLog
    directory: AccountDirectory
    store: ClickHouseProjectionStore
    kv: ControlledKeyValue
    executor: PluginExecutor
    live: InProcessLiveChannel
    author: str = "author"
    timer: ManualTimer = field(default_factory=ManualTimer)

    def processor(
        self, *, executor: HookExecutor | None = None, **options: Any
    ) -> PluginHookProcessor:
        defaults: dict[str, Any] = {
            "publisher": LivePublisher(self.live),
            "failures_to_suspend": 3,
            "policy": SupervisionPolicy(initial_delay_s=0.0, max_delay_s=0.0),
            "sleep": no_wait,
            "tick_sleep": self.timer.sleep,
            "tick_interval_s": 60.0,
            "wait_s": 0.01,
        }
        return PluginHookProcessor(
            self.log,
            self.directory,
            executor or self.executor,
            self.kv,
            **{**defaults, **options},
        )

    async def record(self, event: AccountEvent) -> None:
        assert await self.directory.record(event), event

    async def user(self, name: str, *, created_at: float = 1_700_000_000.0) -> str:
        user_id = f"{name}-{uuid.uuid4().hex[:8]}"
        await self.record(
            AccountCreated(
                event_id=uuid.uuid4().hex,
                user_id=user_id,
                occurred_at=created_at,
                username=f"{name}{uuid.uuid4().hex[:6]}",
                account_number_hash=uuid.uuid4().hex,
            )
        )
        return user_id

    async def publish(self, name: str, script: str) -> None:
        await self.record(
            PluginPublished(
                event_id=uuid.uuid4().hex,
                user_id=self.author,
                occurred_at=1_700_000_000.0,
                name=name,
                display_name=name,
                server_script=script,
            )
        )

    async def install(self, user_id: str, name: str, at: float = 1_700_000_100.0) -> str:
        event_id = uuid.uuid4().hex
        await self.record(
            PluginInstalled(event_id=event_id, user_id=user_id, occurred_at=at, name=name)
        )
        return event_id

    async def heartbeats(
        self, user_id: str, count: int, *, at: float = 1_700_000_200.0
    ) -> list[str]:
        beats = tuple(
            make_heartbeat(
                uuid.uuid4().hex, epoch(10, i % 50), user_id=user_id, project=f"p{i % 3}"
            )
            for i in range(count)
        )
        event = HeartbeatsReceived(
            event_id=uuid.uuid4().hex, user_id=user_id, occurred_at=at, heartbeats=beats
        )
        await self.log.append([Record(HEARTBEATS_TOPIC, user_id.encode(), encode_event(event))])
        return [beat.event_id for beat in beats]


@pytest.fixture
async def world(tmp_path: Path, chdb_url: str) -> AsyncIterator[World]:
    log = SqliteEventLog(tmp_path / "log.sqlite")
    await log.start()
    await log.ensure_topics({HEARTBEATS_TOPIC: 2, ACCOUNTS_TOPIC: 1})
    directory = AccountDirectory(log)
    await directory.start()
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = ClickHouseProjectionStore(chdb_url, database=database)
    store.migrate()
    queries = ClickHousePluginQueries(chdb_url, database=database)
    sandbox = PluginSandbox(SandboxLimits(), workers=3)
    inner = SqlitePluginKeyValue(tmp_path / "plugin-kv.sqlite3")
    await inner.start()
    kv = ControlledKeyValue(inner)
    executor = PluginExecutor(sandbox, directory, queries, kv, base_url="http://codetrackr.test")
    live = InProcessLiveChannel()
    await live.start()
    world = World(log, directory, store, kv, executor, live)
    world.author = await world.user("author")
    try:
        yield world
    finally:
        await live.close()
        sandbox.close()
        await inner.close()
        queries.close()
        await directory.close()
        await log.close()
        store.close()


async def settle(processor: PluginHookProcessor) -> None:
    """Step until every record is dispatched, every hook ran and every batch is committed."""
    for _ in range(500):
        await processor.step()
        await processor.wait_idle()
        if await processor.lag_records() == 0:
            return
    raise AssertionError("the hook processor did not catch up")


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def test_on_heartbeat_fires_once_per_heartbeat_with_the_heartbeat_object(
    world: World,
) -> None:
    alice = await world.user("alice")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    ids = await world.heartbeats(alice, 7) + await world.heartbeats(alice, 5)
    processor = world.processor()
    await processor.start()
    try:
        await settle(processor)
    finally:
        await processor.close()
    space = await world.kv.of("counter", alice)
    assert space["beats"] == "12"
    assert space["installs"] == "1"
    assert {key.removeprefix("seen:") for key in space if key.startswith("seen:")} == set(ids)
    project, language, when = space[f"seen:{ids[0]}"].split("|")
    assert (project, language, float(when)) == ("p0", "Python", epoch(10, 0))
    assert "bulk" not in space


async def test_an_install_runs_before_the_heartbeats_sent_after_it(world: World) -> None:
    alice = await world.user("alice")
    await world.publish(
        "order",
        "async function on_install(ctx) { await ctx.redis.set('order', 'install'); }\n"
        "async function on_heartbeat(ctx, hb) {\n"
        "  await ctx.redis.set('order', ((await ctx.redis.get('order')) || '') + ',hb');\n"
        "}",
    )
    await world.install(alice, "order")
    await world.heartbeats(alice, 2)
    processor = world.processor()
    await processor.start()
    try:
        assert await processor.step() > 0  # one fetch holds both topics' records
        await settle(processor)
    finally:
        await processor.close()
    assert (await world.kv.of("order", alice))["order"] == "install,hb,hb"


class CountingExecutor:
    def __init__(self, inner: PluginExecutor) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def run(self, plugin: StorePlugin, user_id: str, call: Invocation) -> SandboxResult:
        self.calls.append(call.label)
        return await self.inner.run(plugin, user_id, call)


async def test_a_hook_the_script_does_not_define_is_not_run_again(world: World) -> None:
    alice = await world.user("alice")
    await world.publish(
        "installer", "async function on_install(ctx) { await ctx.redis.set('i', '1'); }"
    )
    await world.install(alice, "installer")
    executor = CountingExecutor(world.executor)
    processor = world.processor(executor=executor)
    await processor.start()
    try:
        await settle(processor)
        for at in (1_700_000_200.0, 1_700_000_300.0):
            await world.heartbeats(alice, 3, at=at)
            await settle(processor)
        assert executor.calls == ["on_install", "on_heartbeat"]
        await world.publish("installer", COUNTER)  # a new version defines it
        await world.heartbeats(alice, 2, at=1_700_000_400.0)
        await settle(processor)
        assert executor.calls[2:] == ["on_heartbeat", "on_heartbeat"]
        assert (await world.kv.of("installer", alice))["beats"] == "2"
    finally:
        await processor.close()


async def test_a_big_request_fires_one_bulk_hook_instead(world: World) -> None:
    alice = await world.user("alice")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    await world.heartbeats(alice, BULK_THRESHOLD + 1)
    await world.heartbeats(alice, BULK_THRESHOLD)
    processor = world.processor()
    await processor.start()
    try:
        await settle(processor)
    finally:
        await processor.close()
    space = await world.kv.of("counter", alice)
    assert (space["bulk"], space["bulk-count"]) == ("1", str(BULK_THRESHOLD + 1))
    assert space["beats"] == str(BULK_THRESHOLD)


async def test_heartbeats_received_before_the_install_fire_nothing(world: World) -> None:
    alice = await world.user("alice")
    await world.publish("counter", COUNTER)
    await world.heartbeats(alice, 3, at=1_700_000_050.0)
    await world.install(alice, "counter", at=1_700_000_100.0)
    await world.heartbeats(alice, 2, at=1_700_000_150.0)
    processor = world.processor()
    await processor.start()
    try:
        await settle(processor)
    finally:
        await processor.close()
    assert (await world.kv.of("counter", alice))["beats"] == "2"


async def test_on_install_runs_once_even_when_its_batch_is_delivered_again(world: World) -> None:
    alice = await world.user("alice")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    ids = await world.heartbeats(alice, 4)
    first = world.processor()
    await first.start()
    assert await first.step() > 0  # one fetch: the install and the heartbeats
    await first.wait_idle()
    assert first.fired == 5
    assert (await world.kv.of("counter", alice))["installs"] == "1"
    await first.close(commit=False)  # a crash after the hooks, before the commit

    second = world.processor()
    await second.start()
    try:
        await settle(second)
    finally:
        await second.close()
    space = await world.kv.of("counter", alice)
    assert space["installs"] == "1"
    # Heartbeats are delivered at least once: again after the crash, each id seen.
    assert second.fired == len(ids)
    assert space["beats"] == str(2 * len(ids))
    assert {key.removeprefix("seen:") for key in space if key.startswith("seen:")} == set(ids)

    third = world.processor()  # everything was committed: nothing fires again
    await third.start()
    try:
        await settle(third)
        assert third.fired == 0
    finally:
        await third.close()


async def test_a_resumed_install_gets_no_second_on_install(world: World) -> None:
    alice = await world.user("alice")
    await world.publish("failing", FAILING)
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    await world.install(alice, "counter")  # already installed: no new install
    processor = world.processor()
    await processor.start()
    try:
        await settle(processor)
    finally:
        await processor.close()
    assert (await world.kv.of("counter", alice))["installs"] == "1"


async def test_on_user_login_gets_the_login(world: World) -> None:
    now = 1_700_000_000.0
    alice = await world.user("alice", created_at=now)
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    for at in (now + 30, now + 3600):
        await world.record(
            SessionStarted(
                event_id=uuid.uuid4().hex,
                user_id=alice,
                occurred_at=at,
                session_id=uuid.uuid4().hex,
                refresh_hash=uuid.uuid4().hex,
                expires_at=at + 86400,
                method="github",
            )
        )
        processor = world.processor()
        await processor.start()
        try:
            await settle(processor)
        finally:
            await processor.close()
        login = json.loads((await world.kv.of("counter", alice))["login"])
        user = await world.directory.user(alice)
        assert user is not None
        assert login == {
            "username": user.username,
            "is_new_user": at == now + 30,
            "method": "github",
            "time": at,
        }


async def test_ticks_fire_per_install_on_the_injected_timer(world: World) -> None:
    alice = await world.user("alice")
    bob = await world.user("bob")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    await world.install(bob, "counter")
    processor = world.processor(tick_interval_s=42.0)
    await processor.start()
    stop = asyncio.Event()
    ticks = asyncio.create_task(processor.run_ticks(stop))
    alice_live = await world.live.subscribe(user_channel(alice))
    try:
        await until(lambda: len(world.timer.asked) == 1)
        assert (await world.kv.of("counter", alice)).get("ticks") is None
        for round_ in (1, 2, 3):
            world.timer.fire()
            await until(lambda r=round_: len(world.timer.asked) == r + 1)  # type: ignore[misc]
            await processor.wait_idle()
            assert (await world.kv.of("counter", alice))["ticks"] == str(round_)
            assert (await world.kv.of("counter", bob))["ticks"] == str(round_)
            message = live_message.validate_python(
                json.loads(await asyncio.wait_for(alice_live.next_json(), 5))
            )
            assert message.model_dump() == {
                "type": "plugin.event",
                "plugin": "counter",
                "hook": "on_tick",
                "data": {"ticks": round_},
            }
        assert world.timer.asked == [42.0] * 4
    finally:
        alice_live.close()
        stop.set()
        world.timer.fire()
        await ticks
        await processor.close()


async def test_only_the_holder_of_the_accounts_partition_ticks(world: World) -> None:
    alice = await world.user("alice")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    processor = world.processor()
    assert await processor.tick() == 0  # no reader: no assignment
    await processor.start()
    try:
        assert await processor.holds_ticks()
        assert await processor.tick() == 1
        await processor.wait_idle()
        assert (await world.kv.of("counter", alice))["ticks"] == "1"
    finally:
        await processor.close()


async def test_a_failing_plugin_is_suspended_while_another_keeps_working(world: World) -> None:
    alice = await world.user("alice")
    await world.publish("failing", FAILING)
    await world.publish("counter", COUNTER)
    await world.install(alice, "failing")
    await world.install(alice, "counter")
    await world.heartbeats(alice, 2)
    await world.heartbeats(alice, 2)
    processor = world.processor(failures_to_suspend=3)
    await processor.start()
    try:
        await settle(processor)
        install = world.directory.plugins.install(alice, "failing")
        assert install is not None
        assert install.suspended
        assert install.suspended_reason is not None
        assert "3 failed hooks in a row" in install.suspended_reason
        assert "boom p" in install.suspended_reason
        assert (processor.failed, processor.suspended) == (3, 1)
        assert (await world.kv.of("counter", alice))["beats"] == "4"

        await world.install(alice, "failing")  # installing again resumes it
        assert not world.directory.plugins.install(alice, "failing").suspended  # type: ignore[union-attr]
        await world.heartbeats(alice, 1, at=1_700_000_300.0)
        await settle(processor)
        assert processor.failed == 4
        assert (await world.kv.of("counter", alice))["beats"] == "5"
    finally:
        await processor.close()


async def test_an_outage_of_ours_is_retried_not_counted(world: World) -> None:
    alice = await world.user("alice")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    await world.heartbeats(alice, 3)
    world.kv.fail_next = 4  # the marker probe and the first hooks meet an unreachable store
    processor = world.processor(failures_to_suspend=1)
    await processor.start()
    try:
        await settle(processor)
    finally:
        await processor.close()
    install = world.directory.plugins.install(alice, "counter")
    assert install is not None
    assert not install.suspended
    space = await world.kv.of("counter", alice)
    assert (space["installs"], space["beats"]) == ("1", "3")
    assert processor.failed == 0


async def test_fetched_records_wait_for_an_unreadable_account_log(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await world.user("alice")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    await world.heartbeats(alice, 3)
    real_sync = world.directory.sync
    failures = [LogUnavailable("the account log could not be read up to its end")] * 2

    async def flaky_sync() -> None:
        if failures:
            raise failures.pop()
        await real_sync()

    monkeypatch.setattr(world.directory, "sync", flaky_sync)
    processor = world.processor()
    await processor.start()
    try:
        await settle(processor)
    finally:
        await processor.close()
    assert failures == []
    space = await world.kv.of("counter", alice)
    assert (space["installs"], space["beats"]) == ("1", "3")


async def test_banned_and_uninstalled_plugins_stop_firing_and_lose_their_data(world: World) -> None:
    alice = await world.user("alice")
    bob = await world.user("bob")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    await world.install(bob, "counter")
    await world.heartbeats(alice, 1)
    await world.heartbeats(bob, 1)
    processor = world.processor()
    await processor.start()
    try:
        await settle(processor)
        assert (await world.kv.of("counter", alice))["beats"] == "1"
        await world.record(
            PluginUninstalled(
                event_id=uuid.uuid4().hex,
                user_id=alice,
                occurred_at=1_700_000_300.0,
                name="counter",
            )
        )
        await world.heartbeats(alice, 2, at=1_700_000_400.0)
        await settle(processor)
        assert (await world.kv.of("counter", alice)) == {}  # cleaned up, and nothing counted since

        await world.record(
            PluginModerated(
                event_id=uuid.uuid4().hex,
                user_id=world.author,
                occurred_at=1_700_000_500.0,
                name="counter",
                action="ban",
            )
        )
        await world.heartbeats(bob, 2, at=1_700_000_600.0)
        await settle(processor)
        assert (await world.kv.of("counter", bob))["beats"] == "1"
        assert await processor.tick() == 1  # queued, but a banned plugin does not run
        await processor.wait_idle()
        assert "ticks" not in (await world.kv.of("counter", bob))
    finally:
        await processor.close()


async def test_a_slow_plugin_delays_only_its_own_pair(world: World) -> None:
    alice = await world.user("alice")
    bob = await world.user("bob")
    await world.publish("slow", SLOW)
    await world.publish("counter", COUNTER)
    await world.install(alice, "slow")
    await world.install(bob, "counter")
    gate = world.kv.gates["gate"] = asyncio.Event()
    await world.heartbeats(alice, 1)
    for _ in range(5):
        await world.heartbeats(bob, 2)
    processor = world.processor(batch_size=1, max_batches_in_flight=64)
    await processor.start()
    try:
        for _ in range(200):
            await processor.step()
            if (await world.kv.of("counter", bob)).get("beats") == "10":
                break
        assert (await world.kv.of("counter", bob))["beats"] == "10"
        assert "beats" not in (await world.kv.of("slow", alice))
        assert await processor.lag_records() > 0  # nothing past the slow batch is committed
        gate.set()
        await settle(processor)
        assert (await world.kv.of("slow", alice))["beats"] == "1"
    finally:
        gate.set()
        await processor.close()


async def test_hook_results_reach_the_owners_live_channel(world: World) -> None:
    alice = await world.user("alice")
    await world.publish(
        "echo",
        "async function on_heartbeat(ctx, hb) { return { project: hb.project }; }\n"
        "async function on_install(ctx) { return null; }",
    )
    await world.install(alice, "echo")
    await world.heartbeats(alice, 2)
    subscription = await world.live.subscribe(user_channel(alice))
    processor = world.processor()
    await processor.start()
    try:
        await settle(processor)
        received = [json.loads(await asyncio.wait_for(subscription.next_json(), 5)) for _ in "ab"]
    finally:
        subscription.close()
        await processor.close()
    assert received == [
        {"type": "plugin.event", "plugin": "echo", "hook": "on_heartbeat", "data": {"project": p}}
        for p in ("p0", "p1")
    ]
    assert subscription.pending() == 0


async def test_account_deletion_removes_every_plugins_data(world: World) -> None:
    from schemas.events import AccountDeleted

    alice = await world.user("alice")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    processor = world.processor()
    await processor.start()
    try:
        await settle(processor)
        assert (await world.kv.of("counter", alice)) == {"installs": "1"}
        await world.record(
            AccountDeleted(event_id=uuid.uuid4().hex, user_id=alice, occurred_at=1_700_000_900.0)
        )
        await settle(processor)
        assert await world.kv.dump_user(alice) == {}
    finally:
        await processor.close()


async def test_a_replay_of_the_projections_fires_no_hook(world: World) -> None:
    alice = await world.user("alice")
    await world.publish("counter", COUNTER)
    await world.install(alice, "counter")
    await world.heartbeats(alice, 6)
    projector = HeartbeatProjector(world.store)
    runner = ProjectionRunner(world.log, projector, group=PROJECTIONS_GROUP)
    await runner.start()
    ends = {
        **await world.log.end_offsets(HEARTBEATS_TOPIC),
        **await world.log.end_offsets(ACCOUNTS_TOPIC),
    }
    await runner.run_to(ends)
    await runner.close()
    processor = world.processor()
    await processor.start()
    try:
        await settle(processor)
        before = await world.kv.dump_user(alice)
        fired = processor.fired
        assert before["counter"]["beats"] == "6"

        await replay(world.log, HeartbeatProjector(world.store), world.store.truncate_projections)
        assert count_heartbeats(world.store, alice) == 6
        await settle(processor)
        assert processor.fired == fired
        assert await world.kv.dump_user(alice) == before
    finally:
        await processor.close()
    assert HOOKS_GROUP != PROJECTIONS_GROUP
