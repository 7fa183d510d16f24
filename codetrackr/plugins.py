"""What runs plugins in one process, built from the settings: the sandbox, the plugin SQL
clients, the key-value store handle and the executor over them.

The API (RPC) and the hook processor each build their own (:mod:`codetrackr.bootstrap`,
:mod:`codetrackr.hooks`), so hooks never take sandbox threads from RPC calls nor the other way
round; both reach the same data.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from accounts.directory import AccountDirectory
from api.routes.account_forms import profile_changes
from codetrackr.settings import Settings
from plugin_host.executor import PluginExecutor
from plugins_runtime import PluginSandbox, ProcessSandbox, Sandbox, SandboxLimits
from plugins_runtime.kv import PluginKeyValue
from plugins_runtime.kv_factory import open_plugin_kv
from plugins_runtime.sql_executor import ClickHousePluginQueries, PluginQueries


@dataclass
class PluginRuntime:
    sandbox: Sandbox
    queries: PluginQueries
    kv: PluginKeyValue
    executor: PluginExecutor

    async def close(self) -> None:
        """Close the sandbox (threads or processes), the clients and the store."""
        await asyncio.to_thread(self.sandbox.close)
        await asyncio.to_thread(self.queries.close)
        await self.kv.close()


# Hooks are background work: their sandbox processes yield the cores to projections and requests.
HOOKS_NICE = 10


def build_plugin_runtime(
    settings: Settings,
    directory: AccountDirectory,
    *,
    nice: int = 0,
    queries: PluginQueries | None = None,
) -> PluginRuntime:
    """No I/O until the key-value store is started. ``nice``: added to the sandbox processes'
    niceness (:data:`HOOKS_NICE` for hooks run inside the server: background work; RPC calls
    answer a waiting user). ``queries``: where ``ctx.db.query`` runs, when not on ClickHouse
    from this process (a hook process sends it to the server)."""
    timeout_s = settings.plugin_timeout_s
    limits = SandboxLimits(wall_s=timeout_s, cpu_s=timeout_s)
    sandbox: Sandbox
    if settings.plugin_isolation == "process":
        sandbox = ProcessSandbox(limits, workers=settings.plugin_workers, nice=nice)
    else:
        sandbox = PluginSandbox(limits, workers=settings.plugin_workers)
    if queries is None:
        queries = ClickHousePluginQueries(
            settings.resolved_clickhouse_url(), settings.clickhouse_database
        )
    kv = open_plugin_kv(settings.redis_url, settings.data_dir)
    executor = PluginExecutor(
        sandbox,
        directory,
        queries,
        kv,
        base_url=settings.public_url or f"http://{settings.host}:{settings.port}",
        validate_profile=profile_changes,
    )
    return PluginRuntime(sandbox, queries, kv, executor)
