"""The hook process of ``codetrackr serve``: the plugin hook processor in a process of its own.

Started by :class:`codetrackr.hooks.HookProcess` as ``python -m codetrackr.hook_child``; its only
input is one JSON line on stdin (the channel's socket and secret, the server's settings without
its secrets). It runs at :data:`~codetrackr.plugins.HOOKS_NICE` (set by the server as it starts
it; its sandbox processes inherit it), connects to the server (:mod:`codetrackr.hook_channel`),
reads the embedded log from the file (:class:`eventlog.embedded.follower.SqliteLogFollower`;
writes go through the server) and runs :func:`codetrackr.hooks.hooks_running` until SIGTERM, or
until the server's end of the channel closes (the server died: nothing is left to work for). It
reports its health and counters to the server every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from accounts.directory import AccountDirectory
from codetrackr.bootstrap import build_event_log, supervision_policy
from codetrackr.hook_channel import (
    ChannelLive,
    ChannelLogWrites,
    ChannelQueries,
    HookChannelClient,
    report_message,
)
from codetrackr.hooks import HookParts, build_hooks, hooks_running
from codetrackr.settings import Settings
from eventlog.embedded import SqliteEventLog
from eventlog.embedded.follower import SqliteLogFollower
from live.factory import open_live_channel
from live.port import LiveChannel

_log = logging.getLogger("codetrackr.hooks.process")
REPORT_INTERVAL_S = 1.0


async def _report(client: HookChannelClient, parts: HookParts) -> None:
    processor = parts.processor
    health = processor.health
    lag: dict[str, int] | None
    lag_records: int | None
    try:
        lag = await processor.lag_by_partition()
        lag_records = await processor.lag_records()
    except Exception:
        lag = lag_records = None
    counts = {
        "fired": processor.fired,
        "failed": processor.failed,
        "suspended": processor.suspended,
        "batches": health.batches,
        "batch_records": health.batch_records,
        "batch_seconds": health.batch_seconds,
    }
    message = report_message(health, counts, parts.runtime.executor.outcomes, lag, lag_records)
    client.send("report", **message)


async def run(start: dict[str, Any]) -> int:
    settings = Settings(**start["settings"])
    client = HookChannelClient(Path(start["socket"]), bytes.fromhex(start["secret"]))
    await client.connect()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    owner = build_event_log(settings)
    if not isinstance(owner, SqliteEventLog):
        _log.error("the hook process serves the embedded log only")
        return 2
    log = SqliteLogFollower(owner.path, ChannelLogWrites(client))
    client.on_appended = log.appended
    await log.start()
    directory = AccountDirectory(log)
    live: LiveChannel = (
        open_live_channel(settings.redis_url) if settings.redis_url else ChannelLive(client)
    )
    try:
        await live.start()
        await directory.start()
        parts = build_hooks(
            settings,
            log,
            directory,
            live,
            supervision_policy(settings),
            nice=0,  # this whole process runs at HOOKS_NICE already
            queries=ChannelQueries(client, settings.clickhouse_database),
        )
        async with hooks_running(parts, stop_timeout_s=float(start.get("stop_timeout_s", 10))):
            while True:
                await _report(client, parts)
                if stop.is_set() or client.closed.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), REPORT_INTERVAL_S)
            if client.closed.is_set() and not stop.is_set():
                _log.error("the server closed the hook channel; the hook process stops")
        return 0 if stop.is_set() else 1
    finally:
        await directory.close()
        await live.close()
        await log.close()
        await client.close()


def main() -> int:
    start = json.loads(sys.stdin.readline())
    os.umask(0o077)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return asyncio.run(run(start))


if __name__ == "__main__":
    raise SystemExit(main())
