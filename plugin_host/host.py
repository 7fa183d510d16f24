"""``HostCalls`` for one plugin and one user: what ``ctx.db`` and ``ctx.redis`` really do.

Writes (``INSERT``/``UPDATE``/``DELETE`` of what a plugin may change) become events on the log
(:mod:`plugin_host.writes`). Reads go to the SQL executor (checked and confined to the caller
by construction; it blocks, so it runs on a worker thread) with the caller's account and store
rows, taken on the event loop before the thread starts so the fold is never read while it
changes. Keys go to the plugin's own
namespace ``plugin:<name>:<user>:`` of the key-value store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeAlias, TypeVar

from accounts.directory import AccountDirectory
from eventlog.port import LogError
from plugin_host.rows import host_rows, mentioned_relations
from plugin_host.writes import ProfileValidator, record_write
from plugins_runtime.host import JSON, HostCallError
from plugins_runtime.kv import KeyValueUnavailable, PluginKeyValue
from plugins_runtime.sql_executor import PluginQueries, PluginQueryFailed
from plugins_runtime.sql_scope import PluginSqlRefused
from plugins_runtime.sql_writes import is_write, plan_write

_log = logging.getLogger(__name__)
T = TypeVar("T")


# The plugins' key-value store (the port of ``plugins_runtime.kv``).
KeyValue: TypeAlias = PluginKeyValue


class BoundHost:
    """The I/O of one execution of ``plugin`` for ``user_id``."""

    def __init__(
        self,
        plugin: str,
        user_id: str,
        *,
        directory: AccountDirectory,
        queries: PluginQueries,
        kv: KeyValue,
        validate_profile: ProfileValidator | None = None,
    ) -> None:
        self._plugin = plugin
        self._user_id = user_id
        self._directory = directory
        self._queries = queries
        self._kv = kv
        self._validate_profile = validate_profile
        # Set when a call failed because the database or the key-value store could not be
        # reached: the execution's failure is then ours, not the plugin's (retry, do not count).
        self.unavailable = False

    async def db_query(self, sql: str, params: list[JSON]) -> list[dict[str, JSON]]:
        if is_write(sql):
            return await self._write(sql, params)
        rows = host_rows(self._directory.state, self._user_id, mentioned_relations(sql))
        try:
            return await asyncio.to_thread(
                self._queries.query, self._user_id, sql, params, host_rows=rows
            )
        except PluginQueryFailed as exc:
            self.unavailable = self.unavailable or exc.code == "unavailable"
            raise HostCallError(str(exc)) from None
        except PluginSqlRefused as exc:
            raise HostCallError(str(exc)) from None

    async def _write(self, sql: str, params: list[JSON]) -> list[dict[str, JSON]]:
        try:
            intent = plan_write(sql, params, plugin=self._plugin, user_id=self._user_id)
        except PluginSqlRefused as exc:
            raise HostCallError(str(exc)) from None
        try:
            await record_write(
                self._directory,
                self._plugin,
                self._user_id,
                intent,
                validate_profile=self._validate_profile,
            )
        except LogError:
            _log.warning("plugin %s: a write could not be recorded", self._plugin, exc_info=True)
            self.unavailable = True
            raise HostCallError("ctx.db.query: the write could not be recorded, retry") from None
        return []

    async def kv_get(self, key: str) -> str | None:
        return await self._key_value(self._kv.get(self._plugin, self._user_id, key))

    async def kv_set(self, key: str, value: str) -> None:
        await self._key_value(self._kv.set(self._plugin, self._user_id, key, value))

    async def kv_del(self, key: str) -> None:
        await self._key_value(self._kv.delete(self._plugin, self._user_id, key))

    async def kv_incr(self, key: str) -> int:
        return await self._key_value(self._kv.incr(self._plugin, self._user_id, key))

    async def _key_value(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except KeyValueUnavailable:
            # The store's own failure (unreachable, closed): logged here, a plain message there.
            _log.warning("plugin %s: key-value store unavailable", self._plugin, exc_info=True)
            self.unavailable = True
            raise HostCallError("ctx.redis is unavailable, retry later") from None
