"""Plugin scripts run in the real QuickJS engine: host calls as promises, limits, hostile scripts.

Every hostile script must end in its own typed failure, quickly, while a well-behaved plugin run at
the same time and right after it still gets its answer (one execution cannot hurt another).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

import pytest

from plugins_runtime import (
    JSON,
    FailureKind,
    HookCall,
    HostCallError,
    LifecycleHook,
    LogLine,
    PluginContext,
    PluginSandbox,
    PluginScript,
    ProcessSandbox,
    RpcCall,
    Sandbox,
    SandboxFailure,
    SandboxLimits,
    SandboxOk,
    SandboxResult,
    http_status,
    sanitize_handler_name,
)

pytestmark = pytest.mark.quickjs

USER = "6f1c2b7e-2f0a-4d8e-9a51-2f3b4c5d6e7f"
CONTEXT = PluginContext(user_id=USER, base_url="https://codetrackr.example")
HEARTBEAT: dict[str, JSON] = {
    "project": "codetrackr",
    "language": "Python",
    "editor": "Neovim",
    "duration": 30,
    "time": 1_764_700_000,
}
# Small caps keep the hostile cases fast; memory and stack are the product's defaults.
LIMITS = SandboxLimits(wall_s=0.5, cpu_s=0.5)
ROOMY = SandboxLimits(wall_s=5, cpu_s=5)


class DictHost:
    """A HostCalls over plain dicts that records what the plugin asked for."""

    def __init__(self) -> None:
        self.kv: dict[str, str] = {}
        self.queries: list[tuple[str, list[JSON]]] = []
        self.calls = 0

    async def db_query(self, sql: str, params: list[JSON]) -> list[dict[str, JSON]]:
        self.calls += 1
        self.queries.append((sql, params))
        return [{"n": 42, "total_secs": 3600, "echo": params}]

    async def kv_get(self, key: str) -> str | None:
        self.calls += 1
        return self.kv.get(key)

    async def kv_set(self, key: str, value: str) -> None:
        self.calls += 1
        self.kv[key] = value

    async def kv_del(self, key: str) -> None:
        self.calls += 1
        self.kv.pop(key, None)

    async def kv_incr(self, key: str) -> int:
        self.calls += 1
        value = int(self.kv.get(key, "0")) + 1
        self.kv[key] = str(value)
        return value


class FailingHost(DictHost):
    """The database refuses the query with a message for the author; the store breaks inside."""

    async def db_query(self, sql: str, params: list[JSON]) -> list[dict[str, JSON]]:
        raise HostCallError("table secrets is not allowed")

    async def kv_get(self, key: str) -> str | None:
        raise ConnectionError("redis://10.0.0.7:6379 refused the connection")


class SlowHost(DictHost):
    async def kv_get(self, key: str) -> str | None:
        await asyncio.sleep(30)
        return None


GOOD = PluginScript(
    "heartbeat-counter",
    """
    async function on_heartbeat(ctx, heartbeat) {
      log('Project:', heartbeat.project, 'editor', heartbeat.editor);
      const rows = await ctx.db.query(
        'SELECT COUNT(*) as n FROM heartbeats WHERE user_id = $1 AND project = $2',
        [ctx.user_id, heartbeat.project]);
      const first = await ctx.redis.incr('count:' + heartbeat.project);
      const second = await ctx.redis.incr('count:' + heartbeat.project);
      await ctx.redis.set('last-lang', heartbeat.language);
      warn('count is', second);
      return { n: rows[0].n, echo: rows[0].echo, first, second,
               lang: await ctx.redis.get('last-lang'), user: ctx.user_id,
               base: ctx.config.base_url };
    }
    """,
)


KINDS: dict[str, Callable[[SandboxLimits, int], Sandbox]] = {
    "thread": lambda limits, workers: PluginSandbox(limits, workers=workers),
    "process": lambda limits, workers: ProcessSandbox(limits, workers=workers),
}


@pytest.fixture(scope="module", params=sorted(KINDS))
def make_sandbox(request: pytest.FixtureRequest) -> Callable[[SandboxLimits, int], Sandbox]:
    """Both implementations of the port pass every test of this module."""
    return KINDS[request.param]


@pytest.fixture(scope="module")
def sandbox(make_sandbox: Callable[[SandboxLimits, int], Sandbox]) -> Iterator[Sandbox]:
    box = make_sandbox(LIMITS, 3)
    yield box
    box.close()


async def run_good(sandbox: Sandbox) -> SandboxResult:
    return await sandbox.run(
        GOOD, HookCall(LifecycleHook.ON_HEARTBEAT, HEARTBEAT), CONTEXT, DictHost()
    )


def assert_good(result: SandboxResult) -> None:
    assert isinstance(result, SandboxOk), result
    assert result.result == {
        "n": 42,
        "echo": [USER, "codetrackr"],
        "first": 1,
        "second": 2,
        "lang": "Python",
        "user": USER,
        "base": "https://codetrackr.example",
    }


async def run_script(
    sandbox: Sandbox,
    source: str,
    hook: LifecycleHook = LifecycleHook.ON_TICK,
    host: DictHost | None = None,
    limits: SandboxLimits | None = None,
) -> SandboxResult:
    return await sandbox.run(
        PluginScript("under-test", source), HookCall(hook), CONTEXT, host or DictHost(), limits
    )


def failure(result: SandboxResult, kind: FailureKind) -> SandboxFailure:
    assert isinstance(result, SandboxFailure), result
    assert result.kind is kind, (result.kind, result.message, result.stack)
    return result


async def test_on_heartbeat_gets_the_hosts_answers_and_its_logs_are_captured(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    host = DictHost()
    with caplog.at_level(logging.INFO, logger="plugins_runtime.plugin"):
        result = await sandbox.run(
            GOOD, HookCall(LifecycleHook.ON_HEARTBEAT, HEARTBEAT), CONTEXT, host
        )

    assert_good(result)
    assert isinstance(result, SandboxOk)
    assert host.queries == [
        (
            "SELECT COUNT(*) as n FROM heartbeats WHERE user_id = $1 AND project = $2",
            [USER, "codetrackr"],
        )
    ]
    assert host.kv == {"count:codetrackr": "2", "last-lang": "Python"}
    assert result.host_calls == 5
    assert [(line.level, line.text) for line in result.logs] == [
        ("log", "Project: codetrackr editor Neovim"),
        ("warn", "count is 2"),
    ]
    assert 0 < result.cpu_s <= result.wall_s + 0.05
    records = [r for r in caplog.records if r.name == "plugins_runtime.plugin"]
    assert [(r.levelno, r.plugin, r.user_id, r.hook) for r in records] == [  # type: ignore[attr-defined]
        (logging.INFO, "heartbeat-counter", USER, "on_heartbeat"),
        (logging.WARNING, "heartbeat-counter", USER, "on_heartbeat"),
    ]
    assert "count is 2" in records[1].getMessage()


HOSTILE = {
    "infinite_loop": ("async function on_tick(ctx) { while (true) {} }", FailureKind.TIMEOUT),
    "catastrophic_regex": (
        "function on_tick(ctx) { return /(a+)+$/.test('a'.repeat(40) + 'b'); }",
        FailureKind.TIMEOUT,
    ),
    "catches_its_own_timeout": (
        """async function on_tick(ctx) {
             try { while (true) {} } catch (e) { return 'caught ' + e; }
             finally { return 'finally ran'; }
           }""",
        FailureKind.TIMEOUT,
    ),
    "spins_over_microtasks": (
        # Each job is short and QuickJS re-arms its limit per job: only the cumulative cap sees it.
        "async function on_tick(ctx) { for (;;) { await null; } }",
        FailureKind.TIMEOUT,
    ),
    "growing_array": (
        "function on_tick(ctx) { const a = []; for (;;) a.push('x'.repeat(1000) + a.length); }",
        FailureKind.OUT_OF_MEMORY,
    ),
    "growing_string_in_async": (
        # Flat 1 MB strings (concatenation alone builds ropes that hit "string too long" first).
        """async function on_tick(ctx) {
             const keep = [], s = 'x'.repeat(1 << 20);
             for (;;) { keep.push((s + keep.length).toLowerCase()); await null; }
           }""",
        FailureKind.OUT_OF_MEMORY,
    ),
    "deep_recursion": (
        "function f(n) { return f(n + 1) + 1; } function on_tick(ctx) { return f(0); }",
        FailureKind.STACK_OVERFLOW,
    ),
    "async_deep_recursion": (
        "async function f(n) { return 1 + await f(n + 1); } "
        "async function on_tick(ctx) { return f(0); }",
        FailureKind.STACK_OVERFLOW,
    ),
    "never_settles": (
        "function on_tick(ctx) { return new Promise(() => {}); }",
        FailureKind.NEVER_SETTLED,
    ),
    "awaits_a_promise_it_dropped": (
        "async function on_tick(ctx) { let wake; await new Promise(r => { wake = r; }); }",
        FailureKind.NEVER_SETTLED,
    ),
    "ten_thousand_host_calls": (
        """async function on_tick(ctx) {
             const all = [];
             for (let i = 0; i < 10000; i++) all.push(ctx.redis.incr('k' + i).catch(e => 0));
             return (await Promise.all(all)).length;
           }""",
        FailureKind.TOO_MANY_HOST_CALLS,
    ),
    "top_level_loop": ("while (true) {}", FailureKind.TIMEOUT),
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_plugin_is_contained_and_others_are_unaffected(
    sandbox: Sandbox, name: str
) -> None:
    source, kind = HOSTILE[name]
    host = DictHost()
    started = time.monotonic()
    # Cases that end on their own (memory, stack, calls, nothing to run) get room to get there
    # on a busy machine; the time caps are the subject only of the timeout cases.
    limits = LIMITS if kind is FailureKind.TIMEOUT else ROOMY
    hostile, concurrent_good = await asyncio.gather(
        run_script(sandbox, source, host=host, limits=limits), run_good(sandbox)
    )
    elapsed = time.monotonic() - started

    failed = failure(hostile, kind)
    assert failed.message
    # Within one step QuickJS counts CPU, not wall time: on a loaded machine the wall clock of a
    # spinning step runs ahead of its CPU, so CPU is the tight bound and wall only a sanity one.
    assert failed.cpu_s < limits.cpu_s + 0.2
    assert elapsed < 10 * LIMITS.wall_s, f"{name} took {elapsed:.2f}s"
    assert_good(concurrent_good)
    assert_good(await run_good(sandbox))
    if kind is FailureKind.TOO_MANY_HOST_CALLS:
        # The cap holds before any I/O of the over-the-cap batch is done.
        assert host.calls <= LIMITS.max_host_calls
        assert "1000 host calls" in failed.message


async def test_awaited_host_calls_one_by_one_also_stop_at_the_cap(sandbox: Sandbox) -> None:
    host = DictHost()
    result = await run_script(
        sandbox,
        "async function on_tick(ctx) { for (;;) { try { await ctx.redis.get('k'); } catch {} } }",
        host=host,
        # The script catches the cap's error and spins until the time cap; it is still reported
        # for the calls.
        limits=SandboxLimits(wall_s=0.5, cpu_s=0.5, max_host_calls=50),
    )
    failed = failure(result, FailureKind.TOO_MANY_HOST_CALLS)
    assert failed.message == "more than 50 host calls in one execution"
    assert host.calls == failed.host_calls == 50


async def test_timeouts_say_which_cap_was_hit(sandbox: Sandbox) -> None:
    cpu_bound = await run_script(
        sandbox,
        "async function on_tick(ctx) { for (;;) { await null; } }",
        limits=SandboxLimits(cpu_s=0.3, wall_s=5),
    )
    assert failure(cpu_bound, FailureKind.TIMEOUT).message == "CPU limit of 0.3 s exceeded"
    assert cpu_bound.cpu_s >= 0.3

    started = time.monotonic()
    io_bound = await run_script(
        sandbox,
        "async function on_tick(ctx) { return await ctx.redis.get('slow'); }",
        host=SlowHost(),
        limits=SandboxLimits(cpu_s=5, wall_s=0.3),
    )
    assert failure(io_bound, FailureKind.TIMEOUT).message == "time limit of 0.3 s exceeded"
    assert time.monotonic() - started < 3  # not the host's 30 s sleep
    assert io_bound.cpu_s < 0.3
    assert http_status(FailureKind.TIMEOUT) == 504


async def test_event_loop_keeps_running_while_a_plugin_spins(sandbox: Sandbox) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await run_script(sandbox, "function on_tick(ctx) { while (true) {} }")
    finally:
        task.cancel()
    failure(result, FailureKind.TIMEOUT)
    assert ticks >= 5  # ~50 possible in 0.5 s, fewer on a busy machine; a blocked loop: 0 or 1


async def test_host_globals_are_absent(sandbox: Sandbox) -> None:
    result = await run_script(
        sandbox,
        """
        async function on_tick(ctx) {
          const names = ['fetch', 'require', 'std', 'os', 'setTimeout', 'setInterval',
                         'setImmediate', 'WebAssembly', 'process', 'XMLHttpRequest', 'Deno',
                         'module', 'exports', 'scriptArgs', 'print'];
          const present = names.filter(n => typeof globalThis[n] !== 'undefined');
          let imported;
          try { await import('os'); imported = 'os'; }
          catch (e) { imported = 'failed: ' + e.name; }
          let fetched;
          try { fetch('http://127.0.0.1/'); fetched = 'called'; }
          catch (e) { fetched = e.name; }
          return { present, imported, fetched };
        }
        """,
    )
    assert isinstance(result, SandboxOk), result
    assert result.result == {
        "present": [],
        "imported": result.result["imported"] if isinstance(result.result, dict) else None,
        "fetched": "ReferenceError",
    }
    assert isinstance(result.result, dict)
    assert str(result.result["imported"]).startswith("failed: ")


async def test_a_static_import_fails_to_compile(sandbox: Sandbox) -> None:
    result = await run_script(sandbox, "import * as os from 'os'; function on_tick() {}")
    assert failure(result, FailureKind.PLUGIN_ERROR).message.startswith("SyntaxError")


SETTINGS_PLUGIN = PluginScript(
    "my-plugin",
    """
    const lifecycle = {
      on_install: async (ctx) => { await ctx.redis.set('installed', 1); return 'installed'; },
      on_user_login: async (ctx) => ctx.user_id,
    };
    const endpoints = {
      'set-threshold': async (ctx, req) => {
        const threshold = Number(req.threshold) || 3600;
        await ctx.db.query(
          'UPDATE plugin_settings SET settings = settings || $1 WHERE user_id = $2',
          [JSON.stringify({ threshold }), ctx.user_id]);
        return { ok: true, threshold };
      },
      stats: (ctx, req) => ({ sync: true, body: req }),
    };
    """,
)


async def test_rpc_handlers_and_the_lifecycle_object_are_dispatched(sandbox: Sandbox) -> None:
    host = DictHost()
    rpc = await sandbox.run(
        SETTINGS_PLUGIN,
        RpcCall(sanitize_handler_name("set-threshold"), {"threshold": 7200}),
        CONTEXT,
        host,
    )
    assert isinstance(rpc, SandboxOk), rpc
    assert rpc.result == {"ok": True, "threshold": 7200}
    assert host.queries[0][1] == ['{"threshold":7200}', USER]

    sync = await sandbox.run(SETTINGS_PLUGIN, RpcCall("stats", [1, "a"]), CONTEXT, host)
    assert isinstance(sync, SandboxOk)
    assert sync.result == {"sync": True, "body": [1, "a"]}

    installed = await sandbox.run(
        SETTINGS_PLUGIN, HookCall(LifecycleHook.ON_INSTALL), CONTEXT, host
    )
    assert isinstance(installed, SandboxOk)
    assert installed.result == "installed"
    assert host.kv["installed"] == "1"
    login = await sandbox.run(SETTINGS_PLUGIN, HookCall(LifecycleHook.ON_USER_LOGIN), CONTEXT, host)
    assert isinstance(login, SandboxOk)
    assert login.result == USER


async def test_hooks_get_their_event_as_second_argument(sandbox: Sandbox) -> None:
    script = PluginScript(
        "events",
        """
        async function on_heartbeats_bulk(ctx, event) { return event.count * 2; }
        const lifecycle = {
          on_user_login: async (ctx, e) => e.is_new_user ? 'welcome ' + e.username : 'hi',
        };
        """,
    )
    bulk = await sandbox.run(
        script, HookCall(LifecycleHook.ON_HEARTBEATS_BULK, {"count": 21}), CONTEXT, DictHost()
    )
    assert isinstance(bulk, SandboxOk)
    assert bulk.result == 42
    login = await sandbox.run(
        script,
        HookCall(LifecycleHook.ON_USER_LOGIN, {"username": "ada", "is_new_user": True}),
        CONTEXT,
        DictHost(),
    )
    assert isinstance(login, SandboxOk)
    assert login.result == "welcome ada"


async def test_unknown_handlers_are_reported_not_resolved_elsewhere(sandbox: Sandbox) -> None:
    assert sanitize_handler_name("../set threshold!") == "setthreshold"
    for call in (
        RpcCall("nope"),
        RpcCall("constructor"),  # inherited from Object.prototype, not the plugin's
        RpcCall("toString"),
        HookCall(LifecycleHook.ON_TICK),  # neither top-level nor in `lifecycle`
    ):
        result = await sandbox.run(SETTINGS_PLUGIN, call, CONTEXT, DictHost())
        assert failure(result, FailureKind.UNKNOWN_HANDLER).message.startswith("plugin defines no")
    assert http_status(FailureKind.UNKNOWN_HANDLER) == 404


async def test_host_call_errors_reject_the_promise_with_a_clear_message(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    source = """
    async function on_tick(ctx) {
      const seen = [];
      try { await ctx.db.query('SELECT * FROM secrets', []); }
      catch (e) { seen.push(e instanceof Error, e.message); }
      try { await ctx.redis.get('k'); }
      catch (e) { seen.push(e.message); }
      try { await ctx.redis.set('k', { nested: true }); }
      catch (e) { seen.push(e.message); }
      try { await ctx.db.query(42); }
      catch (e) { seen.push(e.message); }
      return seen;
    }
    """
    with caplog.at_level(logging.ERROR, logger="plugins_runtime.host"):
        result = await run_script(sandbox, source, host=FailingHost())
    assert isinstance(result, SandboxOk), result
    assert result.result == [
        True,
        "table secrets is not allowed",
        "ctx.redis.get failed",  # the ConnectionError's text (an address) stays in our log
        "ctx.redis.set: value must be a string or a number",
        "ctx.db.query: sql must be a non-empty string",
    ]
    assert "10.0.0.7" not in repr(result)
    assert any("redis.get" in r.getMessage() for r in caplog.records)

    uncaught = await run_script(
        sandbox,
        "async function on_tick(ctx) { await ctx.db.query('SELECT 1 FROM secrets'); }",
        host=FailingHost(),
    )
    assert failure(uncaught, FailureKind.PLUGIN_ERROR).message == (
        "Error: table secrets is not allowed"
    )


async def test_a_thrown_error_comes_back_with_message_and_stack(sandbox: Sandbox) -> None:
    result = await run_script(
        sandbox,
        """
        function check(hb) { throw new TypeError('no project on ' + hb); }
        async function on_tick(ctx) { await ctx.redis.incr('n'); check('tick'); }
        """,
    )
    failed = failure(result, FailureKind.PLUGIN_ERROR)
    assert failed.message == "TypeError: no project on tick"
    assert failed.stack is not None
    assert "at check" in failed.stack
    assert http_status(FailureKind.PLUGIN_ERROR) == 400

    thrown = await run_script(sandbox, "function on_tick() { throw 'plain string'; }")
    assert failure(thrown, FailureKind.PLUGIN_ERROR).message == "Thrown: plain string"

    broken = await run_script(sandbox, "function on_tick( { ")
    assert failure(broken, FailureKind.PLUGIN_ERROR).message.startswith("SyntaxError")


@pytest.mark.parametrize(
    "source",
    [
        "function on_tick() { return 10n; }",
        "function on_tick() { const a = {}; a.self = a; return a; }",
        "function on_tick() { return 'x'.repeat(2 * 1024 * 1024); }",
    ],
    ids=["bigint", "cycle", "too_large"],
)
async def test_a_result_that_is_not_json_is_invalid(sandbox: Sandbox, source: str) -> None:
    failure(await run_script(sandbox, source), FailureKind.INVALID_RESULT)


async def test_undefined_results_are_null_and_unawaited_writes_still_happen(
    sandbox: Sandbox,
) -> None:
    host = DictHost()
    result = await run_script(
        sandbox, "function on_tick(ctx) { ctx.redis.set('fire', 'forget'); }", host=host
    )
    assert isinstance(result, SandboxOk), result
    assert result.result is None
    assert host.kv == {"fire": "forget"}


async def test_logs_are_bounded_and_kept_when_the_plugin_fails(sandbox: Sandbox) -> None:
    limits = SandboxLimits(wall_s=0.5, cpu_s=0.5, max_log_lines=3, max_log_chars=10)
    chatty = await run_script(
        sandbox,
        """function on_tick(ctx) {
             error({ a: 1 }, [2], null);
             log('0123456789abcdef');
             for (let i = 0; i < 50; i++) warn('line', i);
           }""",
        limits=limits,
    )
    assert isinstance(chatty, SandboxOk), chatty
    assert [(line.level, line.text) for line in chatty.logs] == [
        ("error", '{"a":1} [2] null'[:10] + " ...[truncated]"),
        ("log", "0123456789 ...[truncated]"),
        ("warn", "line 0"),
        ("warn", "[49 more log lines dropped]"),
    ]

    for source, kind in [
        ("function on_tick() { log('before the loop'); while (true) {} }", FailureKind.TIMEOUT),
        (
            "function on_tick() { log('before'); const a = []; for (;;) a.push('y'.repeat(999)); }",
            FailureKind.OUT_OF_MEMORY,
        ),
    ]:
        failed = failure(await run_script(sandbox, source), kind)
        assert failed.logs[0].text.startswith("before")


class GatedHost(DictHost):
    """``ctx.redis.get`` answers only once the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def kv_get(self, key: str) -> str | None:
        await self.gate.wait()
        return "open"


async def test_log_lines_reach_the_sink_while_the_script_still_runs(sandbox: Sandbox) -> None:
    host = GatedHost()
    streamed: list[LogLine] = []
    before_gate = asyncio.Event()

    def on_log(line: LogLine) -> None:
        streamed.append(line)
        if line.text == "after a job":
            before_gate.set()

    source = """async function on_tick(ctx) {
                  log('first');
                  await 0;
                  warn('after a job');
                  const gate = await ctx.redis.get('gate');
                  for (let i = 0; i < 3; i++) error('after the gate', gate, i);
                  return 'done';
                }"""
    limits = SandboxLimits(wall_s=10, cpu_s=10, max_log_lines=4)
    run = asyncio.ensure_future(
        sandbox.run(
            PluginScript("under-test", source),
            HookCall(LifecycleHook.ON_TICK),
            CONTEXT,
            host,
            limits,
            on_log=on_log,
        )
    )
    # The script waits on the gate: its first lines must arrive before it can end.
    await asyncio.wait_for(before_gate.wait(), 10)
    assert not run.done()
    assert [line.text for line in streamed] == ["first", "after a job"]
    host.gate.set()
    result = await run
    assert isinstance(result, SandboxOk), result
    assert result.result == "done"
    # Every line of the result, the dropped-lines notice too, went to the sink, in order.
    assert streamed == list(result.logs)
    assert [(line.level, line.text) for line in streamed] == [
        ("log", "first"),
        ("warn", "after a job"),
        ("error", "after the gate open 0"),
        ("error", "after the gate open 1"),
        ("warn", "[1 more log lines dropped]"),
    ]


async def test_cancelling_the_caller_stops_the_execution(
    sandbox: Sandbox, make_sandbox: Callable[[SandboxLimits, int], Sandbox]
) -> None:
    limits = SandboxLimits(wall_s=30, cpu_s=30)
    task = asyncio.create_task(
        run_script(sandbox, "async function on_tick() { for (;;) await null; }", limits=limits)
    )
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker is free again well before the 30 s cap: a good plugin on a 1-worker pool runs.
    single = make_sandbox(limits, 1)
    try:
        hog = asyncio.create_task(
            single.run(
                PluginScript("hog", "async function on_tick() { for (;;) await null; }"),
                HookCall(LifecycleHook.ON_TICK),
                CONTEXT,
                DictHost(),
            )
        )
        await asyncio.sleep(0.2)
        hog.cancel()
        started = time.monotonic()
        assert_good(
            await single.run(
                GOOD, HookCall(LifecycleHook.ON_HEARTBEAT, HEARTBEAT), CONTEXT, DictHost()
            )
        )
        assert time.monotonic() - started < 5  # not the hog's 30 s cap
    finally:
        single.close()


@pytest.mark.parametrize(
    ("tamper", "works"),
    [
        # What JSON.stringify consults: the protocol's answers become garbage, which is caught.
        ("Array.prototype.toJSON = function () { return 'x'; };", False),
        ("Object.prototype.toJSON = function () { return 7; };", False),
        # What the prelude captured or calls through Reflect.apply: no effect on it at all.
        ("Function.prototype.call = function () { return 'hijacked'; };", True),
        ("""JSON.stringify = () => '{"ok": true, "result": "1"}'; JSON.parse = () => 1;""", True),
        ("Promise.prototype.then = function () { return this; }; Promise = null;", True),
    ],
    ids=["array_tojson", "object_tojson", "function_call", "json_functions", "promise"],
)
async def test_a_script_that_rewrites_builtins_fails_only_itself(
    sandbox: Sandbox, tamper: str, works: bool
) -> None:
    host = DictHost()
    result = await run_script(
        sandbox,
        tamper + " async function on_tick(ctx) { await ctx.redis.set('k', 'v'); return 'done'; }",
        host=host,
    )
    if works:
        assert isinstance(result, SandboxOk), result
        assert result.result == "done"
        assert host.kv == {"k": "v"}
    else:
        # Never an exception out of the sandbox, never a forged success.
        assert failure(result, FailureKind.PLUGIN_ERROR).message.startswith(
            "the script changed built-ins"
        )
    assert_good(await run_good(sandbox))


async def test_many_executions_at_once_share_the_workers(sandbox: Sandbox) -> None:
    hosts = [DictHost() for _ in range(24)]
    results = await asyncio.gather(
        *(
            sandbox.run(GOOD, HookCall(LifecycleHook.ON_HEARTBEAT, HEARTBEAT), CONTEXT, host)
            for host in hosts
        ),
        run_script(sandbox, "function on_tick() { while (true) {} }"),
    )
    for result in results[:-1]:
        assert_good(result)
    failure(results[-1], FailureKind.TIMEOUT)
    assert all(host.kv["count:codetrackr"] == "2" for host in hosts)
