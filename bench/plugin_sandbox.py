"""Figure 6: what one plugin execution costs, against the thread hop it cannot avoid.

Value: ``PluginSandbox.run`` of a trivial ``on_tick`` (a fresh QuickJS context, the prelude, the
script's compile, the call, the promise loop, the context dropped), awaited from the event loop.
Baseline, interleaved: ``run_in_executor`` of a no-op on a one-thread pool, the hop from the
event loop to a worker and back that any off-loop execution pays. The notes add the same trivial
hook awaiting one ``ctx.redis.incr`` (one host call: worker -> loop -> worker) and a bare
``quickjs.Context()`` with its limits set, both p50. No server is involved.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import quickjs

from bench.report import Row, percentile
from plugins_runtime import (
    JSON,
    HookCall,
    LifecycleHook,
    PluginContext,
    PluginSandbox,
    PluginScript,
    SandboxOk,
)

SAMPLES_AT_SCALE_1 = 2_000
_CONTEXT = PluginContext("00000000-0000-4000-8000-000000000000", "http://127.0.0.1")
_TRIVIAL = PluginScript("bench", "function on_tick(ctx) { return 1; }")
_ONE_CALL = PluginScript("bench", "async function on_tick(ctx) { return ctx.redis.incr('n'); }")


class _CounterHost:
    def __init__(self) -> None:
        self.n = 0

    async def db_query(self, sql: str, params: list[JSON]) -> list[dict[str, JSON]]:
        return []

    async def kv_get(self, key: str) -> str | None:
        return None

    async def kv_set(self, key: str, value: str) -> None:
        return None

    async def kv_del(self, key: str) -> None:
        return None

    async def kv_incr(self, key: str) -> int:
        self.n += 1
        return self.n


def _fresh_context() -> None:
    context = quickjs.Context()
    context.set_memory_limit(16 * 1024 * 1024)
    context.set_max_stack_size(512 * 1024)


async def figure_plugin_sandbox(scale: float) -> list[Row]:
    samples = max(100, round(SAMPLES_AT_SCALE_1 * scale))
    loop = asyncio.get_running_loop()
    sandbox = PluginSandbox(workers=1)
    hop = concurrent.futures.ThreadPoolExecutor(1)
    host = _CounterHost()
    tick = HookCall(LifecycleHook.ON_TICK)
    runs: list[float] = []
    hops: list[float] = []
    calls: list[float] = []
    contexts: list[float] = []
    try:
        for _ in range(20):  # warm both pools and the allocator
            await sandbox.run(_TRIVIAL, tick, _CONTEXT, host)
            await loop.run_in_executor(hop, time.perf_counter)
        for _ in range(samples):
            started = time.perf_counter()
            result = await sandbox.run(_TRIVIAL, tick, _CONTEXT, host)
            runs.append(time.perf_counter() - started)
            if not isinstance(result, SandboxOk) or result.result != 1:
                raise RuntimeError(f"trivial plugin failed: {result}")
            started = time.perf_counter()
            await loop.run_in_executor(hop, time.perf_counter)
            hops.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = await sandbox.run(_ONE_CALL, tick, _CONTEXT, host)
            calls.append(time.perf_counter() - started)
            if not isinstance(result, SandboxOk):
                raise RuntimeError(f"one-call plugin failed: {result}")
            started = time.perf_counter()
            _fresh_context()
            contexts.append(time.perf_counter() - started)
    finally:
        sandbox.close()
        hop.shutdown()
    return [
        Row(
            mode="embedded",
            figure="6 plugin execution (fresh QuickJS context, trivial on_tick), p50",
            unit="s",
            value=percentile(runs, 50),
            baseline=percentile(hops, 50),
            baseline_label="event loop -> worker thread -> loop, no-op, p50",
            notes=[
                f"plugin execution p99 {percentile(runs, 99) * 1e6:.0f} µs, "
                f"hop p99 {percentile(hops, 99) * 1e6:.0f} µs, {samples} samples each, "
                "interleaved",
                f"with one awaited ctx.redis.incr: p50 {percentile(calls, 50) * 1e6:.0f} µs; "
                f"a bare quickjs.Context() with limits set: p50 "
                f"{percentile(contexts, 50) * 1e6:.0f} µs (main thread)",
            ],
        )
    ]
