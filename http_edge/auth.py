"""Who is calling: credentials from every place clients put them, resolved to an account.

Accepted, in this order: ``X-API-Key``; ``Authorization: Bearer <jwt | key | base64(key)>``;
``Authorization: Basic base64(key)`` or ``base64(key:)`` (what WakaTime CLIs send); ``?api_key=``.
A present but invalid credential is a 401; the request is never retried with a weaker one.
"""

from __future__ import annotations

import base64
import binascii
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

    async def authenticate(self, request: Request, *, allow_api_key: bool = True) -> Principal:
        try:
            return await self._authenticate(request, allow_api_key)
        except LogError:
            # An unknown credential is checked against the log's latest state; when the log
            # cannot be read, "unknown" would be a guess, so the honest answer is "retry".
            raise ApiError(
                503, "cannot verify credentials right now; retry", headers={"Retry-After": "5"}
            ) from None

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
        return Principal(user=user, via="api_key", key_id=found.key_id)

    async def _by_token(self, token: str) -> Principal:
        try:
            claims = self._tokens.verify(token)
        except InvalidToken:
            raise _unauthorized("invalid or expired token") from None
        user = await self._directory.user(claims.user_id)
        if user is None:
            raise _unauthorized("invalid or expired token")
        return Principal(user=user, via="jwt")
