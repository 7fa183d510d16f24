"""The plugin key-value store on Redis (the distributed deployment).

Keys are real Redis keys ``plugin:<plugin>:<user_id>:<key>`` holding strings, so an operator sees
the layout plugins are documented with; host markers are ``host:<marker>``. ``incr`` is Redis's
INCR, ``mark_once`` is ``SET NX``. A user's keys are found with SCAN and a MATCH pattern whose glob
characters are escaped, and every key found is checked again here: ``*`` in a pattern also matches
``:``, so ``plugin:*:u1:*`` alone would also match another user's key whose own text starts with
``u1:``.

Durability is the server's: run it with the append-only file on (``docker-compose.yml`` does:
``appendonly yes``, ``appendfsync everysec``). A key written while SCAN walks a user's keys may be
missed by that walk (SCAN guarantees only the keys present for the whole walk).

Every Redis or connection error raises :class:`plugins_runtime.kv.KeyValueUnavailable`, except
INCR's refusals, which are the plugin's (``HostCallError``). No retry here: the callers have their
own policy.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig

from plugins_runtime.host import HostCallError
from plugins_runtime.kv import (
    PLUGIN_PREFIX,
    KeyValueUnavailable,
    check_plugin_name,
    check_user_id,
    check_value,
    marker_key,
    namespace_prefix,
    namespaced_key,
)

__all__ = ["RedisPluginKeyValue", "escape_glob"]

_T = TypeVar("_T")
_TRANSPORT_ERRORS = (RedisError, OSError, TimeoutError)
_SCAN_COUNT = 500
_BATCH = 500
_GLOB_SPECIAL = frozenset("*?[]\\")


def escape_glob(text: str) -> str:
    """``text`` as a literal inside a Redis MATCH pattern (``*``, ``?``, ``[``, ``]``, ``\\``)."""
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)


class RedisPluginKeyValue:
    """:class:`plugins_runtime.kv.PluginKeyValue` on the Redis at ``url`` (``redis://``,
    ``rediss://`` or ``unix://``). ``start`` opens no connection: the first call does."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 2.0,
        op_timeout_s: float = 5.0,
        max_connections: int = 16,
    ) -> None:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"Redis URL {url!r}: expected redis://, rediss:// or unix://")
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._op_timeout_s = op_timeout_s
        self._max_connections = max_connections
        self._client: Redis | None = None

    async def start(self) -> None:
        if self._client is not None:
            return
        # A blocking pool: under a burst, calls wait for a free connection instead of failing.
        pool = BlockingConnectionPool.from_url(
            self._url,
            max_connections=self._max_connections,
            timeout=self._op_timeout_s,
            socket_connect_timeout=self._connect_timeout_s,
            socket_timeout=self._op_timeout_s,
            socket_keepalive=True,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
            # redis-py 8's maintenance notifications (a Redis Enterprise feature) make the pool
            # skip its liveness check: after a Redis restart each pooled connection would fail
            # one more call.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._client = Redis.from_pool(pool)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*_TRANSPORT_ERRORS):
                await client.aclose()

    def _redis(self) -> Redis:
        if self._client is None:
            raise KeyValueUnavailable("plugin key-value store is not open")
        return self._client

    async def _call(self, call: Awaitable[_T]) -> _T:
        try:
            return await call
        except _TRANSPORT_ERRORS as exc:
            raise KeyValueUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc

    async def get(self, plugin: str, user_id: str, key: str) -> str | None:
        name = namespaced_key(plugin, user_id, key)
        value: Any = await self._call(self._redis().get(name))
        return None if value is None else str(value)

    async def set(self, plugin: str, user_id: str, key: str, value: str) -> None:
        name = namespaced_key(plugin, user_id, key)
        await self._call(self._redis().set(name, check_value(value)))

    async def delete(self, plugin: str, user_id: str, key: str) -> None:
        name = namespaced_key(plugin, user_id, key)
        await self._call(self._redis().delete(name))

    async def incr(self, plugin: str, user_id: str, key: str) -> int:
        name = namespaced_key(plugin, user_id, key)
        try:
            value: Any = await self._redis().incr(name)
        except ResponseError as exc:
            message = str(exc).lower()
            if "not an integer" in message:
                raise HostCallError(
                    f"ctx.redis.incr: the value of {key!r} is not an integer"
                ) from None
            if "overflow" in message:
                raise HostCallError(
                    f"ctx.redis.incr: incrementing {key!r} would overflow"
                ) from None
            raise KeyValueUnavailable(f"Redis: {exc}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise KeyValueUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc
        return int(value)

    async def _scan(self, pattern: str) -> AsyncIterator[list[str]]:
        """Batches of the keys matching ``pattern``."""
        batch: list[str] = []
        try:
            async for found in self._redis().scan_iter(match=pattern, count=_SCAN_COUNT):
                batch.append(str(found))
                if len(batch) >= _BATCH:
                    yield batch
                    batch = []
        except _TRANSPORT_ERRORS as exc:
            raise KeyValueUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc
        if batch:
            yield batch

    async def _user_keys(self, user_id: str) -> AsyncIterator[list[tuple[str, str, str]]]:
        """Batches of (Redis key, plugin, plugin's key) of every plugin's keys of ``user_id``."""
        uid = check_user_id(user_id)
        pattern = f"{PLUGIN_PREFIX}*:{escape_glob(uid)}:*"
        async for batch in self._scan(pattern):
            owned: list[tuple[str, str, str]] = []
            for name in batch:
                parts = name.split(":", 3)
                if len(parts) != 4 or parts[2] != uid:
                    continue  # another user's key whose own text contains ":<uid>:"
                with contextlib.suppress(ValueError):
                    owned.append((name, check_plugin_name(parts[1]), parts[3]))
            if owned:
                yield owned

    async def dump_user(self, user_id: str) -> dict[str, dict[str, str]]:
        dump: dict[str, dict[str, str]] = {}
        async for owned in self._user_keys(user_id):
            values: list[Any] = await self._call(self._redis().mget([n for n, _, _ in owned]))
            for (_, plugin, key), value in zip(owned, values, strict=True):
                if value is not None:  # deleted since the scan (or not a string)
                    dump.setdefault(plugin, {})[key] = str(value)
        return {plugin: dict(sorted(keys.items())) for plugin, keys in sorted(dump.items())}

    async def delete_user(self, user_id: str) -> int:
        deleted = 0
        async for owned in self._user_keys(user_id):
            count: Any = await self._call(self._redis().delete(*(n for n, _, _ in owned)))
            deleted += int(count)
        return deleted

    async def delete_plugin_user(self, plugin: str, user_id: str) -> int:
        prefix = namespace_prefix(plugin, user_id)
        deleted = 0
        # Plugin names and user ids hold no ':', so everything under the prefix is this namespace.
        async for batch in self._scan(escape_glob(prefix) + "*"):
            count: Any = await self._call(self._redis().delete(*batch))
            deleted += int(count)
        return deleted

    async def mark_once(self, marker: str) -> bool:
        was_set: Any = await self._call(self._redis().set(marker_key(marker), "1", nx=True))
        return bool(was_set)

    async def unmark(self, marker: str) -> None:
        await self._call(self._redis().delete(marker_key(marker)))
