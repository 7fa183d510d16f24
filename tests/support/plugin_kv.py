"""An in-memory plugin key-value store for tests of hook processing (the port's methods, plus
ways to make it fail or hold a key's reads)."""

from __future__ import annotations

import asyncio

from plugins_runtime.host import HostCallError


class KeyValueDown(Exception):
    """The store cannot be reached (what an adapter raises when its backend is gone)."""


class MemoryPluginKeyValue:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, str]] = {}
        self.markers: set[str] = set()
        # While set, every call raises KeyValueDown (an outage), counting down per call.
        self.fail_next = 0
        # Reads of these keys wait until the key's event is set (a slow plugin on demand).
        self.gates: dict[str, asyncio.Event] = {}

    def _check(self) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise KeyValueDown("key-value store unreachable")

    def of(self, plugin: str, user_id: str) -> dict[str, str]:
        return self.data.get((plugin, user_id), {})

    async def get(self, plugin: str, user_id: str, key: str) -> str | None:
        self._check()
        gate = self.gates.get(key)
        if gate is not None:
            await gate.wait()
        return self.of(plugin, user_id).get(key)

    async def set(self, plugin: str, user_id: str, key: str, value: str) -> None:
        self._check()
        self.data.setdefault((plugin, user_id), {})[key] = value

    async def delete(self, plugin: str, user_id: str, key: str) -> None:
        self._check()
        self.data.get((plugin, user_id), {}).pop(key, None)

    async def incr(self, plugin: str, user_id: str, key: str) -> int:
        self._check()
        space = self.data.setdefault((plugin, user_id), {})
        current = space.get(key, "0")
        if not current.lstrip("-").isdigit():
            raise HostCallError(f"ctx.redis.incr: the value of {key!r} is not an integer")
        space[key] = str(int(current) + 1)
        return int(space[key])

    async def dump_user(self, user_id: str) -> dict[str, dict[str, str]]:
        self._check()
        return {plugin: dict(v) for (plugin, owner), v in self.data.items() if owner == user_id}

    async def delete_user(self, user_id: str) -> int:
        self._check()
        gone = [k for k in self.data if k[1] == user_id]
        count = sum(len(self.data.pop(k)) for k in gone)
        return count

    async def delete_plugin_user(self, plugin: str, user_id: str) -> int:
        self._check()
        return len(self.data.pop((plugin, user_id), {}))

    async def mark_once(self, marker: str) -> bool:
        self._check()
        if marker in self.markers:
            return False
        self.markers.add(marker)
        return True

    async def unmark(self, marker: str) -> None:
        self._check()
        self.markers.discard(marker)
