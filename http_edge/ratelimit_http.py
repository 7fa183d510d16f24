"""Rate limiting at the HTTP edge: which class a request is in, whom it is counted against, 429s.

:class:`RateLimitMiddleware` (ASGI, around every route) counts a request against its client
address (:mod:`http_edge.client_ip`) in the class its path falls in (:func:`classify`), and
answers 429 in the error envelope when the class is full for that address. :class:`ApiKeyBudget`
charges an API key's hourly budget once the key is authenticated; the composition root calls it
from its ``authenticate`` dependency.

Who pays, per request:

* no credential, or a login token (dashboards): the address, in the path's class;
* an API key (editors), on a ``general`` path: the key's hourly budget, *not* the address. So
  many editors behind one NAT, or one load generator with many accounts, are limited per key and
  not by each other. To keep invalid keys from being a free pass, the address's ``general``
  budget is checked first without counting (an address that used it up is refused), and a
  request whose key did not authenticate (401, or a route that reads no key) is counted against
  the address when its response starts.

``/healthz``, ``/readyz`` and WebSocket handshakes are never limited (minting a WebSocket ticket
is). Every limited response carries ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (seconds
until the limit closest to refusing has room again); a 429 also ``Retry-After`` (whole seconds,
≥ 1).
When the store is unavailable nothing is counted and no such header is sent (fail open).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounts.credentials import looks_like_jwt
from http_edge.auth import Principal
from http_edge.client_ip import (
    DEFAULT_HEADERS,
    IpNetwork,
    rate_limit_key,
    resolve_client_ip,
)
from http_edge.errors import ApiError, error_response
from http_edge.ratelimit import Decision, LimitClass, RateLimiter

__all__ = ["ApiKeyBudget", "RateLimitMiddleware", "carries_api_key", "classify"]

_SCOPE_KEY = "codetrackr.ratelimit"
# Path prefixes of the classes counted per address; everything else is ``general``. No webhook
# receiver exists yet: its class waits for one under these paths.
# First match wins: account creation, an /auth path, has a class of its own, far tighter than
# logging in (a new account costs a log write and a row everywhere; nobody needs many a minute).
_PREFIXES: tuple[tuple[str, LimitClass], ...] = (
    ("/auth/anonymous/create", LimitClass.ACCOUNT_CREATION),
    ("/auth/", LimitClass.AUTH),
    ("/badge/", LimitClass.BADGES),
    ("/api/v1/user/badge/", LimitClass.BADGES),
    ("/webhooks/", LimitClass.WEBHOOKS),
    ("/api/v1/webhooks/", LimitClass.WEBHOOKS),
)
_WHAT = {
    LimitClass.GENERAL: "the API",
    LimitClass.AUTH: "the /auth endpoints",
    LimitClass.ACCOUNT_CREATION: "account creation",
    LimitClass.WEBHOOKS: "the webhook endpoints",
    LimitClass.BADGES: "the badges",
}


def classify(path: str) -> LimitClass:
    for prefix, limit_class in _PREFIXES:
        if path.startswith(prefix):
            return limit_class
    return LimitClass.GENERAL


def carries_api_key(scope: Scope) -> bool:
    """Whether the request names an API key where :class:`http_edge.auth.Authenticator` reads
    one (valid or not): ``X-API-Key``, ``Authorization: Basic``, a Bearer that is not a JWT, or
    ``?api_key=``."""
    for name, value in scope.get("headers", ()):
        if name == b"x-api-key" and value.strip():
            return True
        if name == b"authorization":
            scheme, _, credential = value.decode("latin-1").strip().partition(" ")
            credential = credential.strip()
            if scheme.lower() == "basic" and credential:
                return True
            if scheme.lower() == "bearer" and credential and not looks_like_jwt(credential):
                return True
    query: bytes = scope.get("query_string", b"")
    if b"api_key" in query:
        return any(k == "api_key" and v for k, v in parse_qsl(query.decode("latin-1")))
    return False


def _too_many(limit_class: LimitClass, decision: Decision) -> ApiError:
    wait = decision.retry_after_s
    if limit_class is LimitClass.API_KEY:
        message = (
            f"this API key used its budget ({decision.window}); retry in {wait} s. "
            "Send heartbeats in batches to need fewer requests"
        )
    else:
        message = (
            f"too many requests from your address to {_WHAT[limit_class]} "
            f"({decision.window}); retry in {wait} s"
        )
    return ApiError(
        429,
        message,
        details={"class": limit_class.value, "limit": decision.window, "retry_after": wait},
        headers=decision.headers(),
    )


@dataclass
class _Pending:
    """What the middleware decided, for :class:`ApiKeyBudget` and the response headers."""

    ip_decision: Decision
    key_decision: Decision | None = None


def _decoded(raw: Sequence[tuple[bytes, bytes]]) -> Iterator[tuple[str, str]]:
    for name, value in raw:
        yield name.decode("latin-1"), value.decode("latin-1")


def _with_headers(message: Message, decision: Decision) -> Message:
    existing: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
    if not decision.enforced or any(k == b"x-ratelimit-limit" for k, _ in existing):
        return message  # a 429 from ApiKeyBudget already carries its own
    added = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
    return {**message, "headers": existing + added}


class RateLimitMiddleware:
    """ASGI middleware counting each HTTP request against its client address (see module)."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        *,
        trusted_proxies: Sequence[IpNetwork] = (),
        ip_headers: Sequence[str] = DEFAULT_HEADERS,
        exempt_paths: Sequence[str] = ("/healthz", "/readyz"),
    ) -> None:
        self.app = app
        self._limiter = limiter
        self._proxies = tuple(trusted_proxies)
        self._ip_headers = tuple(ip_headers)
        self._exempt = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        client_ip = resolve_client_ip(
            peer[0] if peer else None, _decoded(scope["headers"]), self._proxies, self._ip_headers
        )
        address = rate_limit_key(client_ip)
        limit_class = classify(scope["path"])
        deferred = limit_class is LimitClass.GENERAL and carries_api_key(scope)
        if deferred:
            decision = await self._limiter.peek(limit_class, address)
        else:
            decision = await self._limiter.hit(limit_class, address)
        if not decision.allowed:
            await error_response(_too_many(limit_class, decision), scope["path"])(
                scope, receive, send
            )
            return
        pending = _Pending(decision)
        scope[_SCOPE_KEY] = pending

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                shown = pending.key_decision
                if shown is None:
                    # A key that did not authenticate is the address's request after all.
                    shown = await self._limiter.hit(limit_class, address) if deferred else decision
                message = _with_headers(message, shown)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ApiKeyBudget:
    """Charges an authenticated API key's budget (class ``api_key``), once per request.

    ``limiter`` None (rate limiting switched off): nothing is charged. Raises :class:`ApiError`
    429 when the key's budget is used up.
    """

    def __init__(self, limiter: RateLimiter | None) -> None:
        self._limiter = limiter

    async def charge(self, request: Request, principal: Principal) -> Principal:
        if self._limiter is None or principal.via != "api_key" or principal.key_id is None:
            return principal
        pending = request.scope.get(_SCOPE_KEY)
        decision = pending.key_decision if isinstance(pending, _Pending) else None
        if decision is None:
            decision = await self._limiter.hit(LimitClass.API_KEY, principal.key_id)
            if isinstance(pending, _Pending):
                pending.key_decision = decision
        if not decision.allowed:
            raise _too_many(LimitClass.API_KEY, decision)
        return principal
