"""Single-use WebSocket tickets: a browser cannot set headers on a WebSocket, so an authenticated
``POST /api/v1/ws-ticket`` mints a short-lived ticket that ``GET /ws?ticket=...`` redeems once.

A ticket carries 256 random bits (``secrets.token_urlsafe``); stores keep only its SHA-256, so a
leaked store (or Redis ``MONITOR``) reveals no usable ticket. Redeeming is atomic: of two
concurrent redeems of one ticket, exactly one gets the user id.

Two stores pass one contract (``tests/contract/test_live_contract.py``):
:class:`InMemoryTicketStore` for one process, :class:`RedisTicketStore` when several api processes
serve sockets (a ticket minted by one works on any other; ``SET ... PX`` then ``GETDEL``).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from live.redis import redis_client

__all__ = [
    "DEFAULT_TTL_S",
    "InMemoryTicketStore",
    "RedisTicketStore",
    "TicketStore",
    "TicketStoreUnavailable",
]

DEFAULT_TTL_S = 30.0
_MAX_TICKET_CHARS = 128  # minted tickets have 43; longer input is not worth hashing


class TicketStoreUnavailable(Exception):
    """The store cannot mint or check tickets now (Redis is down). Retry later."""


class TicketStore(Protocol):
    """Mints and redeems tickets. Methods raise :class:`TicketStoreUnavailable` on I/O failure."""

    @property
    def ttl_s(self) -> float: ...

    async def mint(self, user_id: str) -> str:
        """A new ticket for ``user_id``, valid for :attr:`ttl_s` seconds, once.

        ``user_id`` is stored and answered as it is: the live route puts the credential the
        ticket was minted with next to the user id (see :mod:`api.routes.live`).
        """
        ...

    async def redeem(self, ticket: str) -> str | None:
        """The ticket's user id (as minted) the first time it is redeemed in time; None
        otherwise."""
        ...

    async def close(self) -> None: ...


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8", errors="replace")).hexdigest()


def _new_ticket() -> str:
    return secrets.token_urlsafe(32)


class InMemoryTicketStore:
    """Tickets in a dict (one process). ``clock`` is injectable so tests need not wait 30 s."""

    def __init__(
        self,
        ttl_s: float = DEFAULT_TTL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_outstanding: int = 100_000,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._ttl_s = ttl_s
        self._clock = clock
        self._max = max_outstanding
        # digest -> (user id, expiry); insertion order is expiry order (one TTL for all). An
        # OrderedDict, because popping from the front of a plain dict leaves holes to skip.
        self._tickets: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    async def mint(self, user_id: str) -> str:
        now = self._clock()
        while self._tickets:
            _, expires_at = self._tickets[next(iter(self._tickets))]
            if expires_at > now and len(self._tickets) < self._max:
                break
            self._tickets.popitem(last=False)  # expired, or the oldest when at the cap
        ticket = _new_ticket()
        self._tickets[_digest(ticket)] = (user_id, now + self._ttl_s)
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        if not ticket or len(ticket) > _MAX_TICKET_CHARS:
            return None
        entry = self._tickets.pop(_digest(ticket), None)
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    async def close(self) -> None:
        self._tickets.clear()


class RedisTicketStore:
    """Tickets in Redis, shared by every api process of a deployment."""

    def __init__(
        self,
        url: str,
        ttl_s: float = DEFAULT_TTL_S,
        *,
        prefix: str = "codetrackr:ws-ticket:",
        client: Redis | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._ttl_s = ttl_s
        self._prefix = prefix
        self._client = client if client is not None else redis_client(url)

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    async def mint(self, user_id: str) -> str:
        ticket = _new_ticket()
        try:
            await self._client.set(self._prefix + _digest(ticket), user_id, px=self._ttl_ms)
        except (RedisError, OSError) as exc:
            raise TicketStoreUnavailable(str(exc)) from None
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        if not ticket or len(ticket) > _MAX_TICKET_CHARS:
            return None
        try:
            value = await self._client.getdel(self._prefix + _digest(ticket))
        except (RedisError, OSError) as exc:
            raise TicketStoreUnavailable(str(exc)) from None
        if isinstance(value, bytes):
            return value.decode("utf-8")
        return value if isinstance(value, str) else None

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()
