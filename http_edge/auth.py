"""Who is calling: credentials from every place clients put them, resolved to an account.

Accepted, in this order: ``X-API-Key``; ``Authorization: Bearer <jwt | key | base64(key)>``;
``Authorization: Basic base64(key)`` or ``base64(key:)`` (what WakaTime CLIs send); ``?api_key=``.
A present but invalid credential is a 401; the request is never retried with a weaker one.

A login token (JWT) is accepted while its session is live: a logout or a revoked session is
refused on the next request. On a log shared by several processes the directory syncs with the
log before every check (:meth:`accounts.directory.AccountDirectory.sync`), so that holds in every
process; keys likewise. A read-only API key authenticates reads; a write needs
:attr:`Principal.can_write` (403 otherwise).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from accounts.credentials import (
    InvalidToken,
    TokenIssuer,
    hash_secret,
    looks_like_jwt,
    normalize_api_key,
)
from accounts.directory import AccountDirectory
from accounts.state import User
from eventlog.port import LogError
from http_edge.errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="codetrackr", Bearer'}


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    via: Literal["api_key", "jwt"]
    key_id: str | None = None
    session_id: str | None = None
    read_only: bool = False

    @property
    def can_write(self) -> bool:
        """Whether the credential may change anything (every one but a read-only API key)."""
        return not self.read_only


Authenticate = Callable[[Request], Awaitable[Principal]]


@dataclass(frozen=True, slots=True)
class AuthGuards:
    """The three ways a route may require a caller (FastAPI dependencies):

    - ``read``: any valid credential;
    - ``write``: any valid credential but a read-only API key (403 for one);
    - ``login``: a login token (JWT) only, e.g. to manage keys and sessions, so a key pasted into
      an editor can neither mint keys nor lock its owner out.
    """

    read: Authenticate
    write: Authenticate
    login: Authenticate


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers=_CHALLENGE)


def _b64(value: str) -> str | None:
    try:
        padded = value + "=" * (-len(value) % 4)
        return base64.b64decode(padded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _from_basic(value: str) -> str | None:
    decoded = _b64(value.strip())
    if decoded is None:
        return None
    user, _, password = decoded.partition(":")
    return user or password or None


class Authenticator:
    """Resolves a request's credentials. Raises :class:`ApiError` 401 when they do not check."""

    def __init__(self, directory: AccountDirectory, tokens: TokenIssuer) -> None:
        self._directory = directory
        self._tokens = tokens

    async def __call__(self, request: Request) -> Principal:
        return await self.authenticate(request)

    async def authenticate(
        self, request: Request, *, allow_api_key: bool = True, write: bool = False
    ) -> Principal:
        """The caller; 401 for bad credentials (or an API key where ``allow_api_key`` is False),
        403 for a read-only key when ``write``, 503 when the log cannot be read to check."""
        try:
            if self._directory.shared_log and self.carries_credentials(request):
                await self._directory.sync()
            principal = await self._authenticate(request, allow_api_key)
        except LogError:
            # An unknown credential is checked against the log's latest state; when the log
            # cannot be read, "unknown" would be a guess, so the honest answer is "retry".
            raise ApiError(
                503, "cannot verify credentials right now; retry", headers={"Retry-After": "5"}
            ) from None
        reason = self._directory.state.suspended.get(principal.user.user_id)
        if reason is not None:
            raise ApiError(
                403,
                "this account is suspended by the instance's admins"
                + (f": {reason}" if reason else ""),
                code="account_suspended",
            )
        if write and not principal.can_write:
            raise ApiError(403, "this API key is read-only; use a full-access key")
        return principal

    @staticmethod
    def carries_credentials(request: Request) -> bool:
        """Whether the request names any credential (valid or not) in a place we read."""
        return bool(
            request.headers.get("x-api-key")
            or request.headers.get("authorization", "").strip()
            or request.query_params.get("api_key")
        )

    async def _authenticate(self, request: Request, allow_api_key: bool) -> Principal:
        header_key = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "").strip()
        query_key = request.query_params.get("api_key")
        if header_key:
            return await self._by_key(header_key, allow_api_key)
        if authorization:
            scheme, _, value = authorization.partition(" ")
            value = value.strip()
            scheme = scheme.lower()
            if scheme == "bearer" and value:
                if looks_like_jwt(value):
                    return await self._by_token(value)
                if normalize_api_key(value) is None:
                    value = _b64(value) or value
                return await self._by_key(value, allow_api_key)
            if scheme == "basic" and value:
                key = _from_basic(value)
                if key is None:
                    raise _unauthorized("malformed Basic credentials")
                return await self._by_key(key, allow_api_key)
            raise _unauthorized("unsupported Authorization scheme; use Bearer or Basic")
        if query_key:
            return await self._by_key(query_key, allow_api_key)
        raise _unauthorized("authentication required: send an API key or a bearer token")

    async def _by_key(self, raw: str, allowed: bool) -> Principal:
        if not allowed:
            raise _unauthorized("this endpoint needs a login token, not an API key")
        key = normalize_api_key(raw)
        if key is None:
            raise _unauthorized("invalid API key")
        found = await self._directory.key(hash_secret(key))
        if found is None:
            raise _unauthorized("invalid API key")
        user = await self._directory.user(found.user_id)
        if user is None:
            raise _unauthorized("invalid API key")
        self._directory.note_key_used(found)
        return Principal(user=user, via="api_key", key_id=found.key_id, read_only=found.read_only)

    async def _by_token(self, token: str) -> Principal:
        try:
            claims = self._tokens.verify(token)
        except InvalidToken:
            raise _unauthorized("invalid or expired token") from None
        session = await self._directory.session(claims.session_id)
        if session is None or session.user_id != claims.user_id:
            raise _unauthorized("the session has ended (logged out or revoked); log in again")
        user = await self._directory.user(claims.user_id)
        if user is None:
            raise _unauthorized("invalid or expired token")
        return Principal(user=user, via="jwt", session_id=session.session_id)
