"""Run one call (a lifecycle hook or an RPC handler) of an installed plugin for one user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from accounts.directory import AccountDirectory
from accounts.plugins import StorePlugin
from plugin_host.host import BoundHost, KeyValue
from plugins_runtime import (
    Invocation,
    PluginContext,
    PluginSandbox,
    PluginScript,
    SandboxFailure,
    SandboxResult,
)
from plugins_runtime.sql_executor import ClickHousePluginQueries


class PluginHostUnavailable(Exception):
    """The execution failed because the database or the key-value store could not be reached:
    not the plugin's fault. Hooks are retried, RPC callers are answered 503."""


@dataclass(frozen=True, slots=True)
class PluginPolicy:
    """Who may publish (``linked``: accounts linked to an identity provider; ``any``) and who
    moderates the store (usernames, compared case-insensitively)."""

    publish: Literal["linked", "any"] = "linked"
    admins: frozenset[str] = frozenset()

    def is_admin(self, username: str) -> bool:
        return username.lower() in self.admins


class PluginExecutor:
    """Runs plugin calls in the sandbox with a host bound to the plugin and the user."""

    def __init__(
        self,
        sandbox: PluginSandbox,
        directory: AccountDirectory,
        queries: ClickHousePluginQueries,
        kv: KeyValue,
        *,
        base_url: str,
    ) -> None:
        self._sandbox = sandbox
        self._directory = directory
        self._queries = queries
        self.kv = kv
        self._base_url = base_url

    async def run(self, plugin: StorePlugin, user_id: str, call: Invocation) -> SandboxResult:
        """The outcome of ``call``; raises :class:`PluginHostUnavailable` when it failed because
        our database or key-value store could not be reached."""
        host = BoundHost(
            plugin.name, user_id, directory=self._directory, queries=self._queries, kv=self.kv
        )
        result = await self._sandbox.run(
            PluginScript(plugin.name, plugin.server_script),
            call,
            PluginContext(user_id=user_id, base_url=self._base_url),
            host,
        )
        if isinstance(result, SandboxFailure) and host.unavailable:
            raise PluginHostUnavailable(result.message)
        return result


@dataclass(frozen=True, slots=True)
class PluginServices:
    """What the API's plugin routes need: the executor (with its key-value store) and the
    store's policy."""

    executor: PluginExecutor
    policy: PluginPolicy
