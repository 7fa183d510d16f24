"""Logins as device sessions: access tokens, rotating refresh tokens, logout and revocation.

A login appends :class:`schemas.events.SessionStarted` and answers with a short-lived access
token (a JWT naming the session) and an opaque refresh token (only its SHA-256 is recorded).
Refreshing exchanges the refresh token for a new pair and retires the old token
(:class:`schemas.events.SessionRefreshed`, accepted only while the presented token is current).
Presenting a retired refresh token again means it leaked (or a client raced itself): the whole
session is revoked (``refresh_token_reuse``), which logs out the thief and the owner alike; the
owner logs in again, the thief cannot. Logging out or revoking a session from the list appends
:class:`schemas.events.SessionRevoked`; every process refuses the session's tokens from the next
request on (:mod:`http_edge.auth`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from accounts.credentials import (
    REFRESH_TOKEN_PREFIX,
    REFRESH_TOKEN_TTL_S,
    TokenIssuer,
    hash_secret,
    new_refresh_token,
)
from accounts.directory import AccountDirectory, new_event_id
from accounts.state import Session, User
from schemas.events import SessionRefreshed, SessionRevoked, SessionStarted

MAX_DEVICE_CHARS = 200


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives
    session_id: str


class SessionRejected(Exception):
    """The refresh token is unknown, expired, reused, or its session has ended."""


class SessionService:
    """Starts, refreshes and ends sessions through the account directory (every change an event
    on the log). Methods raise :class:`eventlog.port.LogError` when the log is unavailable."""

    def __init__(
        self,
        directory: AccountDirectory,
        tokens: TokenIssuer,
        *,
        refresh_ttl_s: int = REFRESH_TOKEN_TTL_S,
    ) -> None:
        self._directory = directory
        self._tokens = tokens
        self._refresh_ttl_s = refresh_ttl_s

    @property
    def access_ttl_s(self) -> int:
        return self._tokens.ttl_s

    async def start(
        self, user: User, *, method: str, device: str = "", oauth_state: str | None = None
    ) -> TokenPair | None:
        """A new session for ``user``; None when the log's order refused it (e.g. the OAuth
        state it names was consumed by another login first)."""
        now = time.time()
        refresh = new_refresh_token()
        event = SessionStarted(
            event_id=new_event_id(),
            user_id=user.user_id,
            occurred_at=now,
            session_id=new_event_id(),
            refresh_hash=hash_secret(refresh),
            expires_at=now + self._refresh_ttl_s,
            method=method,
            device=device[:MAX_DEVICE_CHARS],
            oauth_state=oauth_state,
        )
        if not await self._directory.record(event):
            return None
        return self._pair(user.user_id, event.session_id, refresh, now)

    async def refresh(self, refresh_token: str) -> tuple[User, TokenPair]:
        """Rotate: a new pair for a current refresh token. Raises :class:`SessionRejected`."""
        token = refresh_token.strip()
        if not token.startswith(REFRESH_TOKEN_PREFIX):
            raise SessionRejected("not a refresh token")
        presented = hash_secret(token)
        session = await self._directory.session_by_refresh_hash(presented)
        now = time.time()
        if session is None or session.expires_at <= now:
            raise SessionRejected("unknown or expired refresh token")
        user = await self._directory.user(session.user_id)
        if user is None:  # pragma: no cover - sessions only exist for existing users
            raise SessionRejected("unknown or expired refresh token")
        if presented != session.refresh_hash:
            await self.revoke(session, reason="refresh_token_reuse")
            raise SessionRejected("refresh token reused: the session is revoked, log in again")
        fresh = new_refresh_token()
        rotated = await self._directory.record(
            SessionRefreshed(
                event_id=new_event_id(),
                user_id=session.user_id,
                occurred_at=now,
                session_id=session.session_id,
                previous_hash=presented,
                refresh_hash=hash_secret(fresh),
                expires_at=now + self._refresh_ttl_s,
            )
        )
        if not rotated:
            # Another use of the same token came first: that is reuse too.
            current = await self._directory.session(session.session_id)
            if current is not None:
                await self.revoke(current, reason="refresh_token_reuse")
            raise SessionRejected("refresh token reused: the session is revoked, log in again")
        return user, self._pair(user.user_id, session.session_id, fresh, now)

    async def revoke(self, session: Session, *, reason: str) -> None:
        await self._directory.record(
            SessionRevoked(
                event_id=new_event_id(),
                user_id=session.user_id,
                occurred_at=time.time(),
                session_id=session.session_id,
                reason=reason,
            )
        )

    def _pair(self, user_id: str, session_id: str, refresh: str, now: float) -> TokenPair:
        access = self._tokens.issue(user_id, session_id, now=now)
        return TokenPair(access, refresh, self._tokens.ttl_s, session_id)
