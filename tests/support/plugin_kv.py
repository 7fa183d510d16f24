"""A real plugin key-value store (any adapter) that tests can make fail or hold, for hook tests."""

from __future__ import annotations

import asyncio

from plugins_runtime.kv import KeyValueUnavailable, PluginKeyValue


class ControlledKeyValue:
    """Delegates to ``inner``; ``fail_next`` calls raise :class:`KeyValueUnavailable` first (an
    outage), and reads of a key in ``gates`` wait until its event is set (a slow plugin)."""

    def __init__(self, inner: PluginKeyValue) -> None:
        self.inner = inner
        self.fail_next = 0
        self.gates: dict[str, asyncio.Event] = {}

    def _check(self) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise KeyValueUnavailable("key-value store unreachable (test outage)")

    async def of(self, plugin: str, user_id: str) -> dict[str, str]:
        """The plugin's keys of the user (what ``dump_user`` exports)."""
        return (await self.inner.dump_user(user_id)).get(plugin, {})

    async def get(self, plugin: str, user_id: str, key: str) -> str | None:
        self._check()
        gate = self.gates.get(key)
        if gate is not None:
            await gate.wait()
        return await self.inner.get(plugin, user_id, key)

    async def set(self, plugin: str, user_id: str, key: str, value: str) -> None:
        self._check()
        await self.inner.set(plugin, user_id, key, value)

    async def delete(self, plugin: str, user_id: str, key: str) -> None:
        self._check()
        await self.inner.delete(plugin, user_id, key)

    async def incr(self, plugin: str, user_id: str, key: str) -> int:
        self._check()
        return await self.inner.incr(plugin, user_id, key)

    async def dump_user(self, user_id: str) -> dict[str, dict[str, str]]:
        self._check()
        return await self.inner.dump_user(user_id)

    async def delete_user(self, user_id: str) -> int:
        self._check()
        return await self.inner.delete_user(user_id)

    async def delete_plugin_user(self, plugin: str, user_id: str) -> int:
        self._check()
        return await self.inner.delete_plugin_user(plugin, user_id)

    async def mark_once(self, marker: str) -> bool:
        self._check()
        return await self.inner.mark_once(marker)

    async def unmark(self, marker: str) -> None:
        self._check()
        await self.inner.unmark(marker)
