"""The host side of ``ctx.db`` and ``ctx.redis``: the port a plugin's I/O goes through.

A plugin never calls Python directly (QuickJS cannot call into Python while a time limit is armed).
Each ``ctx.db.query`` / ``ctx.redis.*`` call queues a request inside the context and returns a
promise; the engine takes the queue, :func:`perform` runs each request against a :class:`HostCalls`
on the event loop, and the engine settles the promise with the JSON answer or an ``Error``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Protocol, TypeAlias

JSON: TypeAlias = "bool | int | float | str | list[JSON] | dict[str, JSON] | None"

logger = logging.getLogger(__name__)

# Redis refuses keys above 512 MB; a plugin key that long is a bug or an attack, so cap it low.
MAX_KEY_CHARS = 1_024


class HostCallError(Exception):
    """Raised by a :class:`HostCalls` method to reject the plugin's promise with this message.

    Its text reaches the plugin's author (their log, their RPC response): say what was wrong with
    the request ("table secrets is not allowed"), never internal detail. Any other exception is
    logged here and the plugin only sees that the call failed.
    """


class HostCalls(Protocol):
    """The I/O one execution may do, already bound to one plugin and one user.

    Implementations scope SQL to the user and prefix keys with ``plugin:<name>:<user>:``; the
    sandbox passes the plugin's arguments through unchanged (validated for type only). Every method
    is awaited on the event loop that called :meth:`PluginSandbox.run`; it may block that coroutine
    as long as it likes, the sandbox's wall-clock cap cancels it. Raise :class:`HostCallError` for a
    request the plugin got wrong.
    """

    async def db_query(self, sql: str, params: list[JSON]) -> list[dict[str, JSON]]: ...

    async def kv_get(self, key: str) -> str | None: ...

    async def kv_set(self, key: str, value: str) -> None: ...

    async def kv_del(self, key: str) -> None: ...

    async def kv_incr(self, key: str) -> int: ...


@dataclass(frozen=True, slots=True)
class HostRequest:
    """One queued call: ``kind`` is the JS name (``db.query``, ``redis.get`` ...)."""

    id: int
    kind: str
    args: list[JSON]


@dataclass(frozen=True, slots=True)
class HostReply:
    """``value_json`` settles the promise when ``error`` is None; else it is rejected with it."""

    id: int
    value_json: str
    error: str | None


def _key(kind: str, args: list[JSON]) -> str:
    key = args[0] if args else None
    if not isinstance(key, str) or not key:
        raise HostCallError(f"ctx.{kind}: key must be a non-empty string")
    if len(key) > MAX_KEY_CHARS:
        raise HostCallError(f"ctx.{kind}: key longer than {MAX_KEY_CHARS} characters")
    return key


async def _dispatch(host: HostCalls, request: HostRequest) -> JSON:
    kind, args = request.kind, request.args
    if kind == "db.query":
        sql = args[0] if args else None
        params = args[1] if len(args) > 1 else []
        if not isinstance(sql, str) or not sql.strip():
            raise HostCallError("ctx.db.query: sql must be a non-empty string")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise HostCallError("ctx.db.query: params must be an array")
        rows = await host.db_query(sql, params)
        return list(rows)
    if kind == "redis.get":
        return await host.kv_get(_key(kind, args))
    if kind == "redis.set":
        key = _key(kind, args)
        value = args[1] if len(args) > 1 else None
        # Redis stores strings: numbers are written as JS would print them, anything else refused.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise HostCallError("ctx.redis.set: value must be a string or a number")
        await host.kv_set(key, value if isinstance(value, str) else json.dumps(value))
        return None
    if kind == "redis.del":
        await host.kv_del(_key(kind, args))
        return None
    if kind == "redis.incr":
        return await host.kv_incr(_key(kind, args))
    raise HostCallError(f"unknown host call {kind!r}")


async def perform(host: HostCalls, request: HostRequest) -> HostReply:
    """Run one request; never raises (a failure becomes a rejection the plugin can catch)."""
    try:
        value = await _dispatch(host, request)
        return HostReply(request.id, json.dumps(value, allow_nan=False), None)
    except HostCallError as exc:
        return HostReply(request.id, "null", str(exc) or f"ctx.{request.kind} failed")
    except (TypeError, ValueError):
        logger.exception("plugin host call %s returned a value that is not JSON", request.kind)
        return HostReply(request.id, "null", f"ctx.{request.kind} failed")
    except Exception:
        # CancelledError is a BaseException and passes through: the execution is being abandoned.
        logger.exception("plugin host call %s failed", request.kind)
        return HostReply(request.id, "null", f"ctx.{request.kind} failed")


async def perform_in_order(host: HostCalls, requests: list[HostRequest]) -> list[HostReply]:
    """Perform ``requests`` one after the other, not concurrently: ``set(k); get(k)`` queued
    without awaits in between must read what was written."""
    return [await perform(host, request) for request in requests]
