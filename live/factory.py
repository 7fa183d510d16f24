"""Building live push from settings (used by the composition root).

No Redis URL: :class:`live.inprocess.InProcessLiveChannel` and
:class:`live.tickets.InMemoryTicketStore` (one process, ``codetrackr serve``). A ``redis://`` URL:
:class:`live.redis.RedisLiveChannel` and :class:`live.tickets.RedisTicketStore`, shared by every
process of a deployment. Both are returned unstarted and do no I/O until used; the caller owns
``start`` and ``close``.
"""

from __future__ import annotations

from live.inprocess import InProcessLiveChannel
from live.port import LiveChannel
from live.redis import RedisLiveChannel
from live.tickets import DEFAULT_TTL_S, InMemoryTicketStore, RedisTicketStore, TicketStore

__all__ = ["open_live_channel", "open_ticket_store"]


def open_live_channel(redis_url: str | None) -> LiveChannel:
    """Raises ValueError for a URL that is not ``redis://``, ``rediss://`` or ``unix://``."""
    if not redis_url:
        return InProcessLiveChannel()
    return RedisLiveChannel(redis_url)


def open_ticket_store(redis_url: str | None, ttl_s: float = DEFAULT_TTL_S) -> TicketStore:
    if not redis_url:
        return InMemoryTicketStore(ttl_s)
    return RedisTicketStore(redis_url, ttl_s)
