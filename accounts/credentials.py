"""Secrets: API keys, account numbers, refresh tokens and JWT access tokens.

API keys are UUIDv4 (what unmodified WakaTime clients accept: 122 random bits). Account numbers
carry 132 random bits and refresh tokens 256, so guessing one is hopeless, and a single SHA-256 is
a sufficient at-rest hash (a slow password hash protects low-entropy secrets; these are not) that
lets a lookup be one dictionary access. Only the hashes reach the log.

Access tokens are short-lived HS256 JWTs naming their session (``sid``); every request checks
that session in the account state, so a logout or a revocation takes effect on the next request
even though the token itself has not expired. The signing keys are derived from the deployment's
secret per purpose, so an access token can never pass for an OAuth ``state`` or the reverse.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

_KEY_RE = re.compile(
    r"^(waka_)?[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$"
)
ACCESS_TOKEN_TTL_S = 15 * 60
REFRESH_TOKEN_TTL_S = 30 * 24 * 3600
ACCOUNT_NUMBER_DIGITS = 40
# log2(10**40): the entropy of an account number, in bits.
ACCOUNT_NUMBER_BITS = ACCOUNT_NUMBER_DIGITS * math.log2(10)
REFRESH_TOKEN_PREFIX = "ctr_"
_ISSUER = "codetrackr"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def derive_key(secret: str, purpose: str) -> bytes:
    """A signing key for one purpose, derived from the deployment's secret (HMAC-SHA256)."""
    return hmac.new(secret.encode("utf-8"), purpose.encode("utf-8"), hashlib.sha256).digest()


def new_api_key() -> str:
    return str(uuid.uuid4())


def normalize_api_key(candidate: str) -> str | None:
    """The canonical form of a key string, or None when it cannot be an API key."""
    value = candidate.strip().lower()
    if not _KEY_RE.match(value):
        return None
    return value.removeprefix("waka_")


def new_account_number() -> str:
    """'A' and 40 random digits: 132 bits, hopeless to guess even at a billion tries a second."""
    return "A" + "".join(secrets.choice("0123456789") for _ in range(ACCOUNT_NUMBER_DIGITS))


def normalize_account_number(candidate: str) -> str:
    return candidate.strip().upper().replace("-", "").replace(" ", "")


def new_refresh_token() -> str:
    """An opaque refresh token: 256 random bits, recognisable by its prefix."""
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    session_id: str
    expires_at: int
    token_id: str


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or not ours."""


class TokenIssuer:
    """Issues and verifies HS256 JWT access tokens (pyjwt). ``ttl_s`` is their lifetime."""

    def __init__(self, secret: str, ttl_s: int = ACCESS_TOKEN_TTL_S) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        self._key = derive_key(secret, "access-token")
        self.ttl_s = ttl_s

    def issue(self, user_id: str, session_id: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "sub": user_id,
            "sid": session_id,
            "iat": issued,
            "exp": issued + self.ttl_s,
            "iss": _ISSUER,
            "jti": uuid.uuid4().hex,
            "typ": "access",
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                issuer=_ISSUER,
                options={"require": ["sub", "sid", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if claims.get("typ") != "access":
            raise InvalidToken("not an access token")
        return TokenClaims(
            str(claims["sub"]), str(claims["sid"]), int(claims["exp"]), str(claims["jti"])
        )


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("ey")
