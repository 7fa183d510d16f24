"""What only the process sandbox promises beyond the port's contract (test_plugin_sandbox.py):
a sandbox process that dies or stops answering costs one execution, never the server, and the
next execution gets a fresh process. Real QuickJS in real child processes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest

from plugins_runtime import (
    FailureKind,
    HookCall,
    LifecycleHook,
    PluginContext,
    PluginScript,
    ProcessSandbox,
    SandboxFailure,
    SandboxLimits,
    SandboxOk,
)

pytestmark = pytest.mark.quickjs

CONTEXT = PluginContext(user_id="5b0e8a8e-6d7a-4a56-9d0e-3c1f4a2b7c90", base_url="http://x")
# Tells the host it has started (one host call), then spins.
SPIN = PluginScript(
    "spinner", "async function on_tick(ctx) { await ctx.redis.get('go'); for (;;) await null; }"
)
ANSWER = PluginScript("answer", "function on_tick() { return 42; }")
TICK = HookCall(LifecycleHook.ON_TICK)


class NoHost:
    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def db_query(self, sql: str, params: list[object]) -> list[dict[str, object]]:
        return []

    async def kv_get(self, key: str) -> str | None:
        self.called.set()
        return None

    async def kv_set(self, key: str, value: str) -> None:
        return None

    async def kv_del(self, key: str) -> None:
        return None

    async def kv_incr(self, key: str) -> int:
        return 1


@pytest.fixture
async def single() -> AsyncIterator[ProcessSandbox]:
    box = ProcessSandbox(SandboxLimits(wall_s=1.0, cpu_s=1.0), workers=1)
    yield box
    box.close()


async def _running(box: ProcessSandbox, script: PluginScript) -> tuple[asyncio.Task[object], int]:
    host = NoHost()
    task: asyncio.Task[object] = asyncio.create_task(box.run(script, TICK, CONTEXT, host))
    await asyncio.wait_for(host.called.wait(), timeout=60)  # the script runs, in its process
    [pid] = box.pids()
    return task, pid


async def _answers(box: ProcessSandbox) -> None:
    result = await box.run(ANSWER, TICK, CONTEXT, NoHost())
    assert isinstance(result, SandboxOk), result
    assert result.result == 42


async def test_no_process_until_the_first_execution(single: ProcessSandbox) -> None:
    assert single.pids() == []
    await _answers(single)
    [pid] = single.pids()
    await _answers(single)
    assert single.pids() == [pid]  # reused, not one per execution


async def test_a_process_killed_mid_execution_fails_that_execution_only(
    single: ProcessSandbox,
) -> None:
    task, pid = await _running(single, SPIN)
    os.kill(pid, signal.SIGKILL)
    result = await task
    assert isinstance(result, SandboxFailure), result
    assert result.kind is FailureKind.PLUGIN_ERROR
    assert "sandbox process ended abruptly" in result.message
    await _answers(single)
    assert single.pids() != [pid]


async def test_a_process_that_stops_answering_is_ended_after_its_caps(
    single: ProcessSandbox,
) -> None:
    task, pid = await _running(single, SPIN)
    os.kill(pid, signal.SIGSTOP)  # its own clock stops with it: only the server's deadline acts
    result = await asyncio.wait_for(task, timeout=30)
    assert isinstance(result, SandboxFailure), result
    assert result.kind is FailureKind.TIMEOUT
    assert "the sandbox process was stopped" in result.message
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    await _answers(single)


async def test_close_ends_the_processes(single: ProcessSandbox) -> None:
    await _answers(single)
    [pid] = single.pids()
    single.close()
    assert single.pids() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RuntimeError):
        await single.run(ANSWER, TICK, CONTEXT, NoHost())


async def test_background_processes_run_at_a_lower_priority() -> None:
    box = ProcessSandbox(SandboxLimits(wall_s=1.0, cpu_s=1.0), workers=1, nice=10)
    try:
        await _answers(box)
        [pid] = box.pids()
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(own + 10, 19)
    finally:
        box.close()


async def test_warm_starts_every_process_before_the_first_execution() -> None:
    box = ProcessSandbox(SandboxLimits(wall_s=1.0, cpu_s=1.0), workers=2)
    try:
        await box.warm()
        started = box.pids()
        assert len(started) == 2
        await _answers(box)
        assert box.pids() == started  # executions use them, none is started on demand
    finally:
        box.close()
