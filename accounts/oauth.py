"""Logging in through an identity provider: the OAuth 2.0 authorization-code flow.

Providers are configured (:class:`OAuthProvider`): GitHub, GitLab (gitlab.com or self-hosted)
and any OpenID Connect provider, by their authorize, token and userinfo URLs.

The flow, with no server-side storage, so the callback may reach another process than the login:

1. ``state`` is a short-lived token signed with a key derived from the deployment's secret,
   naming the provider and a random nonce (:class:`StateSigner`). The nonce is also set as a
   cookie on the browser that started the login, and the callback requires both to match, so a
   callback URL cannot be replayed from another browser (login CSRF).
2. PKCE (S256): the code verifier is derived from the nonce with the same secret, so it need
   not be stored either.
3. The callback exchanges the code for the provider's access token and reads the user
   (:class:`OAuthClient`, httpx); the identity is the provider's stable user id.
4. The session the login starts names the nonce's hash; the account fold accepts one session per
   nonce, so a state is single use in every process.

:class:`OAuthError` covers a provider that refuses (bad code, bad credentials) or fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from accounts.credentials import derive_key

STATE_TTL_S = 600
_STATE_TYP = "oauth_state"


@dataclass(frozen=True, slots=True)
class OAuthProvider:
    """One configured identity provider. ``name`` is part of every identity it vouches for, so
    pointing a configured name at a different server would mix two user bases: don't."""

    name: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    userinfo_url: str
    scope: str


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    subject: str  # the provider's stable user id
    login: str | None
    name: str | None
    avatar_url: str | None


class OAuthError(Exception):
    """The provider refused (``refused``: e.g. an invalid or used code) or failed."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


class InvalidState(Exception):
    """The ``state`` is missing, malformed, tampered with, expired or for another provider."""


class StateSigner:
    """Signs and checks OAuth ``state`` values; derives the PKCE verifier of a nonce."""

    def __init__(self, secret: str, ttl_s: int = STATE_TTL_S) -> None:
        self._key = derive_key(secret, "oauth-state")
        self._pkce_key = derive_key(secret, "oauth-pkce")
        self._ttl_s = ttl_s

    def issue(self, provider: str, now: float | None = None) -> tuple[str, str]:
        """A fresh ``(state, nonce)`` for a login through ``provider``."""
        issued = int(now if now is not None else time.time())
        nonce = secrets.token_urlsafe(24)
        claims = {
            "typ": _STATE_TYP,
            "prv": provider,
            "non": nonce,
            "iat": issued,
            "exp": issued + self._ttl_s,
        }
        return jwt.encode(claims, self._key, algorithm="HS256"), nonce

    def verify(self, state: str, provider: str) -> str:
        """The nonce of a valid ``state`` for ``provider``; raises :class:`InvalidState`."""
        try:
            claims = jwt.decode(
                state,
                self._key,
                algorithms=["HS256"],
                options={"require": ["typ", "prv", "non", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidState(str(exc)) from None
        if claims.get("typ") != _STATE_TYP or claims.get("prv") != provider:
            raise InvalidState("state issued for another purpose or provider")
        return str(claims["non"])

    def code_verifier(self, nonce: str) -> str:
        digest = hmac.new(self._pkce_key, nonce.encode("utf-8"), hashlib.sha256).digest()
        return _b64url(digest + digest[:16])  # 48 bytes: 64 characters, within RFC 7636's 43-128


def code_challenge(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def authorize_url(provider: OAuthProvider, *, redirect_uri: str, state: str, verifier: str) -> str:
    query = {
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": provider.scope,
        "state": state,
        "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    separator = "&" if "?" in provider.authorize_url else "?"
    return f"{provider.authorize_url}{separator}{urlencode(query)}"


def identity_from_userinfo(data: dict[str, Any]) -> ProviderIdentity:
    """Pure: the identity in a userinfo answer of GitHub (``id``, ``login``, ``avatar_url``),
    GitLab (``id``, ``username``, ``avatar_url``) or OpenID Connect (``sub``,
    ``preferred_username``, ``picture``). Raises ValueError without a user id."""
    subject = data.get("id", data.get("sub"))
    if subject is None or isinstance(subject, bool) or str(subject).strip() == "":
        raise ValueError("the provider's user has no id")

    def text(*names: str) -> str | None:
        for name in names:
            value = data.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None

    return ProviderIdentity(
        subject=str(subject).strip(),
        login=text("login", "username", "preferred_username", "nickname"),
        name=text("name"),
        avatar_url=text("avatar_url", "picture"),
    )


_USERNAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def username_candidate(identity: ProviderIdentity) -> str:
    """Pure: a username derived from the provider's login (invalid characters become ``-``)."""
    base = identity.login or (identity.name or "").replace(" ", "-") or "user"
    cleaned = _USERNAME_CHARS.sub("-", base).strip("-_")[:32]
    return cleaned if len(cleaned) >= 2 else f"user-{cleaned}".rstrip("-")


class OAuthClient:
    """The HTTP side of the flow (httpx). ``close`` releases the connection pool."""

    def __init__(
        self, *, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ):
        self._http = httpx.AsyncClient(
            timeout=timeout_s,
            transport=transport,
            headers={"User-Agent": "CodeTrackr", "Accept": "application/json"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def exchange(
        self, provider: OAuthProvider, *, code: str, redirect_uri: str, verifier: str
    ) -> str:
        """The provider's access token for ``code`` (client credentials sent in the body)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
            "code_verifier": verifier,
        }
        data = await self._json("POST", provider.token_url, data=form)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            # GitHub answers 200 {"error": "bad_verification_code"} for a bad or used code.
            reason = data.get("error_description") or data.get("error") or "no access token"
            raise OAuthError(f"the provider refused the code: {reason}", refused=True)
        return token

    async def identity(self, provider: OAuthProvider, access_token: str) -> ProviderIdentity:
        headers = {"Authorization": f"Bearer {access_token}"}
        data = await self._json("GET", provider.userinfo_url, headers=headers)
        try:
            return identity_from_userinfo(data)
        except ValueError as exc:
            raise OAuthError(str(exc), refused=False) from None

    async def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise OAuthError(
                f"the provider is unreachable: {type(exc).__name__}", refused=False
            ) from None
        if 400 <= response.status_code < 500:
            raise OAuthError(f"the provider refused ({response.status_code})", refused=True)
        if response.status_code >= 300:
            raise OAuthError(f"the provider failed ({response.status_code})", refused=False)
        try:
            data = response.json()
        except ValueError:
            raise OAuthError(
                "the provider answered something other than JSON", refused=False
            ) from None
        if not isinstance(data, dict):
            raise OAuthError("the provider answered something other than an object", refused=False)
        return data
