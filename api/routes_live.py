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
"""

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
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

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001
_CLOSE_TIMEOUT_S = 2.0
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
            ticket = await tickets.mint(principal.user.user_id)
        except TicketStoreUnavailable:
            raise ApiError(
                503, "live push is temporarily unavailable; retry", headers={"Retry-After": "5"}
            ) from None
        return WsTicket(ticket=ticket, expires_in=math.ceil(tickets.ttl_s))

    @router.websocket("/ws")
    async def user_socket(websocket: WebSocket, ticket: str = "") -> None:
        try:
            user_id = await tickets.redeem(ticket)
        except TicketStoreUnavailable:
            await _refuse(websocket, TRY_AGAIN_LATER, "live push is temporarily unavailable")
            return
        if user_id is None:
            await _refuse(websocket, POLICY_VIOLATION, "invalid, used or expired ticket")
            return
        await _serve(websocket, user_channel(user_id))

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

    async def _serve(websocket: WebSocket, name: str) -> None:
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
            try:
                done, _ = await asyncio.wait({forward, listen}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (forward, listen):
                    task.cancel()
                await asyncio.gather(forward, listen, return_exceptions=True)
            finished = forward in done and not forward.cancelled() and not forward.exception()
            if finished and forward.result() == "slow":
                code, reason = TRY_AGAIN_LATER, "too slow to keep up; reconnect"
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
