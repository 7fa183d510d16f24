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
from plugins_runtime import PluginSandbox, SandboxLimits
from plugins_runtime.kv import PluginKeyValue
from plugins_runtime.kv_factory import open_plugin_kv
from plugins_runtime.sql_executor import ClickHousePluginQueries


@dataclass
class PluginRuntime:
    sandbox: PluginSandbox
    queries: ClickHousePluginQueries
    kv: PluginKeyValue
    executor: PluginExecutor

    async def close(self) -> None:
        """Wait for running executions, then close the threads, the clients and the store."""
        await asyncio.to_thread(self.sandbox.close)
        await asyncio.to_thread(self.queries.close)
        await self.kv.close()


def build_plugin_runtime(settings: Settings, directory: AccountDirectory) -> PluginRuntime:
    """No I/O until the key-value store is started."""
    timeout_s = settings.plugin_timeout_s
    sandbox = PluginSandbox(
        SandboxLimits(wall_s=timeout_s, cpu_s=timeout_s), workers=settings.plugin_workers
    )
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
