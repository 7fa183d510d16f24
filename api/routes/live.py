"""Live push over WebSocket (docs/live.md).

* ``POST /api/v1/ws-ticket`` (API key or login token) → ``{"ticket", "expires_in"}``: a
  single-use ticket, valid 30 s, because browsers cannot put credentials on a WebSocket.
* ``GET /ws?ticket=...``: the ticket's owner's socket (channel ``user:<id>``). A missing, unknown,
  used or expired ticket is accepted and closed at once with 1008 (policy violation) and a reason,
  so browsers see why (a refused handshake only shows them 1006).
* ``GET /ws/public``: the public leaderboard socket, no ticket.

Every socket first receives ``{"type": "subscribed", "channel": ...}``, then the channel's
messages as JSON text frames. Client frames are read and ignored. Each socket forwards from its
own bounded subscription: a slow client loses the oldest messages (it gets a ``dropped`` notice)
and never holds up anyone else; one that accepts nothing for ``send_timeout_s`` is closed with
1013 (try again later). When the server shuts down, sockets are closed with 1001.

A user socket lives only as long as the credential its ticket was minted with: the ticket names
the session (login token) or API key, and every ``revalidate_s`` the socket checks it; once the
session ended (logout, revoked), the key was deleted or the account was deleted, the socket is
closed with 1008.
"""

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketState

from http_edge.auth import Principal
from http_edge.errors import ApiError, error_responses
from live.port import PUBLIC_LEADERBOARD, LiveChannel, user_channel
from live.subscription import DEFAULT_QUEUE_SIZE, Subscription
from live.tickets import TicketStore, TicketStoreUnavailable
from schemas.live import Subscribed

Authenticate = Callable[[Request], Awaitable[Principal]]


@dataclass(frozen=True, slots=True)
class Grant:
    """Who opened a user socket, and with which credential (a session or an API key)."""

    user_id: str
    session_id: str | None = None
    key_id: str | None = None

    def encode(self) -> str:
        credential = f"session:{self.session_id}" if self.session_id else f"key:{self.key_id or ''}"
        return f"{self.user_id} {credential}"

    @classmethod
    def decode(cls, owner: str) -> "Grant":
        user_id, _, credential = owner.partition(" ")
        kind, _, value = credential.partition(":")
        return cls(
            user_id,
            session_id=value if kind == "session" and value else None,
            key_id=value if kind == "key" and value else None,
        )


# Whether a grant still holds (cheap, no I/O: it runs every ``revalidate_s`` per socket).
GrantCheck = Callable[[Grant], bool]

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001
_CLOSE_TIMEOUT_S = 2.0
_REVOKED = "the session or key this socket was opened with has ended"
_log = logging.getLogger(__name__)


class WsTicket(BaseModel):
    ticket: str = Field(description="pass as `GET /ws?ticket=...`; works once")
    expires_in: int = Field(description="seconds the ticket stays valid")


def build_live_router(
    authenticate: Authenticate,
    channel: LiveChannel,
    tickets: TicketStore,
    *,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    send_timeout_s: float = 10.0,
    max_public_sockets: int = 1000,
    still_valid: GrantCheck | None = None,
    revalidate_s: float = 2.0,
) -> APIRouter:
    router = APIRouter(tags=["live"])
    CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
    public_sockets = 0

    @router.post(
        "/api/v1/ws-ticket",
        summary="A single-use ticket to open your live WebSocket (`GET /ws?ticket=...`)",
        responses=error_responses(401, 503),
    )
    async def ws_ticket(principal: CurrentPrincipal) -> WsTicket:
        try:
            grant = Grant(principal.user.user_id, principal.session_id, principal.key_id)
            ticket = await tickets.mint(grant.encode())
        except TicketStoreUnavailable:
            raise ApiError(
                503, "live push is temporarily unavailable; retry", headers={"Retry-After": "5"}
            ) from None
        return WsTicket(ticket=ticket, expires_in=math.ceil(tickets.ttl_s))

    @router.websocket("/ws")
    async def user_socket(websocket: WebSocket, ticket: str = "") -> None:
        try:
            owner = await tickets.redeem(ticket)
        except TicketStoreUnavailable:
            await _refuse(websocket, TRY_AGAIN_LATER, "live push is temporarily unavailable")
            return
        if owner is None:
            await _refuse(websocket, POLICY_VIOLATION, "invalid, used or expired ticket")
            return
        grant = Grant.decode(owner)
        if still_valid is not None and not still_valid(grant):
            await _refuse(websocket, POLICY_VIOLATION, _REVOKED)
            return
        await _serve(websocket, user_channel(grant.user_id), grant)

    @router.websocket("/ws/public")
    async def public_socket(websocket: WebSocket) -> None:
        nonlocal public_sockets
        if public_sockets >= max_public_sockets:
            await _refuse(websocket, TRY_AGAIN_LATER, "too many public sockets; retry later")
            return
        public_sockets += 1
        try:
            await _serve(websocket, PUBLIC_LEADERBOARD)
        finally:
            public_sockets -= 1

    async def _until_revoked(grant: Grant | None) -> None:
        if grant is None or still_valid is None:
            await asyncio.Event().wait()  # public sockets: never
            return
        # Polled: the accounts state changes as the log is folded, with nothing to wait on.
        while True:
            await asyncio.sleep(revalidate_s)
            if not still_valid(grant):
                return

    async def _serve(websocket: WebSocket, name: str, grant: Grant | None = None) -> None:
        try:
            subscription = await channel.subscribe(name, queue_size=queue_size)
        except RuntimeError:  # the channel is closed: the server is shutting down
            await _refuse(websocket, GOING_AWAY, "server shutting down")
            return
        code, reason = GOING_AWAY, "server shutting down"
        try:
            await websocket.accept()
            await websocket.send_text(Subscribed(channel=name).model_dump_json())
            forward = asyncio.create_task(_forward(websocket, subscription, send_timeout_s))
            listen = asyncio.create_task(_until_disconnect(websocket))
            revoked = asyncio.create_task(_until_revoked(grant))
            tasks = {forward, listen, revoked}
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            finished = forward in done and not forward.cancelled() and not forward.exception()
            if finished and forward.result() == "slow":
                code, reason = TRY_AGAIN_LATER, "too slow to keep up; reconnect"
            if revoked in done and not revoked.cancelled() and not revoked.exception():
                code, reason = POLICY_VIOLATION, _REVOKED
        except (OSError, WebSocketDisconnect):
            pass  # the client went away mid-send
        finally:
            subscription.close()
            await _close(websocket, code, reason)

    return router


async def _forward(websocket: WebSocket, subscription: Subscription, send_timeout_s: float) -> str:
    """Send until the subscription ends ("ended") or the client stops reading ("slow")."""
    while True:
        try:
            text = await subscription.next_json()
        except StopAsyncIteration:
            return "ended"
        try:
            async with asyncio.timeout(send_timeout_s):
                await websocket.send_text(text)
        except TimeoutError:
            return "slow"


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # client frames carry nothing this endpoint needs


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.accept()
    await _close(websocket, code, reason)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    if websocket.client_state == WebSocketState.DISCONNECTED:
        return
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await websocket.close(code, reason)
    except Exception as exc:  # the transport is gone or stuck: nothing left to tell the client
        _log.debug("closing a live socket failed: %r", exc)
