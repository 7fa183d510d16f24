"""Run one call (a lifecycle hook or an RPC handler) of an installed plugin for one user."""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from accounts.directory import AccountDirectory
from accounts.plugins import StorePlugin
from plugin_host.host import BoundHost, KeyValue
from plugin_host.writes import ProfileValidator
from plugins_runtime import (
    JSON,
    FailureKind,
    HostCallError,
    Invocation,
    LogLine,
    PluginContext,
    PluginScript,
    RpcCall,
    Sandbox,
    SandboxFailure,
    SandboxLimits,
    SandboxResult,
    SandboxUnavailable,
)
from plugins_runtime.sql_executor import PluginQueries

# A script's top level only declares its hooks and endpoints: checking it gets little time.
CHECK_LIMITS_S = 2.0


class PluginHostUnavailable(Exception):
    """The execution failed because the database or the key-value store could not be reached, or
    no sandbox process could start: not the plugin's fault. Hooks are retried, RPC callers are
    answered 503."""


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
        sandbox: Sandbox,
        directory: AccountDirectory,
        queries: PluginQueries,
        kv: KeyValue,
        *,
        base_url: str,
        validate_profile: ProfileValidator | None = None,
    ) -> None:
        self._sandbox = sandbox
        self._directory = directory
        self._queries = queries
        self.kv = kv
        self._base_url = base_url
        self._validate_profile = validate_profile
        # Executions by outcome ("ok" or a failure kind; "unavailable" when not the plugin's
        # fault), read by ``/metrics``.
        self.outcomes: collections.Counter[str] = collections.Counter()

    async def run(
        self,
        plugin: StorePlugin,
        user_id: str,
        call: Invocation,
        on_log: Callable[[LogLine], None] | None = None,
    ) -> SandboxResult:
        """The outcome of ``call``; raises :class:`PluginHostUnavailable` when it failed because
        our database or key-value store could not be reached. ``on_log`` gets each line as the
        execution logs it (on this event loop)."""
        host = BoundHost(
            plugin.name,
            user_id,
            directory=self._directory,
            queries=self._queries,
            kv=self.kv,
            validate_profile=self._validate_profile,
        )
        try:
            result = await self._sandbox.run(
                PluginScript(plugin.name, plugin.server_script),
                call,
                PluginContext(user_id=user_id, base_url=self._base_url),
                host,
                on_log=on_log,
            )
        except SandboxUnavailable as exc:
            self.outcomes["unavailable"] += 1
            raise PluginHostUnavailable(str(exc)) from exc
        if isinstance(result, SandboxFailure) and host.unavailable:
            self.outcomes["unavailable"] += 1
            raise PluginHostUnavailable(result.message)
        self.outcomes["ok" if result.ok else result.kind.value] += 1
        return result

    async def check(self, name: str, source: str, user_id: str) -> SandboxFailure | None:
        """Why ``source`` cannot serve as a plugin's server script, or None.

        Runs the script's top level (compiling it) in the sandbox under short limits, with no
        database or key-value store behind ``ctx``, and asks for an RPC handler no script
        defines: a script that compiles and finishes its top level ends ``unknown_handler``.
        """
        limits = self._sandbox.limits
        short = SandboxLimits(
            memory_bytes=limits.memory_bytes,
            stack_bytes=limits.stack_bytes,
            wall_s=min(CHECK_LIMITS_S, limits.wall_s),
            cpu_s=min(CHECK_LIMITS_S, limits.cpu_s),
            max_host_calls=0,
        )
        result = await self._sandbox.run(
            PluginScript(name, source),
            RpcCall(handler=""),
            PluginContext(user_id=user_id, base_url=self._base_url),
            _NoHost(),
            limits=short,
        )
        if isinstance(result, SandboxFailure) and result.kind != FailureKind.UNKNOWN_HANDLER:
            return result
        return None


class _NoHost:
    """``ctx`` while a script is checked: nothing behind it."""

    async def db_query(self, sql: str, params: list[JSON]) -> list[dict[str, JSON]]:
        raise HostCallError("ctx.db is not available while the script is checked")

    async def kv_get(self, key: str) -> str | None:
        raise HostCallError("ctx.redis is not available while the script is checked")

    async def kv_set(self, key: str, value: str) -> None:
        raise HostCallError("ctx.redis is not available while the script is checked")

    async def kv_del(self, key: str) -> None:
        raise HostCallError("ctx.redis is not available while the script is checked")

    async def kv_incr(self, key: str) -> int:
        raise HostCallError("ctx.redis is not available while the script is checked")


@dataclass(frozen=True, slots=True)
class PluginServices:
    """What the API's plugin routes need: the executor (with its key-value store) and the
    store's policy."""

    executor: PluginExecutor
    policy: PluginPolicy
