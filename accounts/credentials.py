"""Secrets: API keys, account numbers and JWT access tokens.

API keys are UUIDv4 (what unmodified WakaTime clients accept). Keys and account numbers carry
more than 96 random bits, so a single SHA-256 is a sufficient at-rest hash (a slow password hash
protects low-entropy secrets; these are not) and lets a lookup be one dictionary access.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

_KEY_RE = re.compile(
    r"^(waka_)?[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$"
)
ACCESS_TOKEN_TTL_S = 7 * 24 * 3600
_ISSUER = "codetrackr"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return str(uuid.uuid4())


def normalize_api_key(candidate: str) -> str | None:
    """The canonical form of a key string, or None when it cannot be an API key."""
    value = candidate.strip().lower()
    if not _KEY_RE.match(value):
        return None
    return value.removeprefix("waka_")


def new_account_number() -> str:
    """'A' and 30 random digits: about 100 bits, hopeless to guess."""
    return "A" + "".join(secrets.choice("0123456789") for _ in range(30))


def normalize_account_number(candidate: str) -> str:
    return candidate.strip().upper().replace("-", "").replace(" ", "")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    expires_at: int
    token_id: str


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or not ours."""


class TokenIssuer:
    """Issues and verifies HS256 JWT access tokens (pyjwt)."""

    def __init__(self, secret: str, ttl_s: int = ACCESS_TOKEN_TTL_S) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        self._secret = secret
        self._ttl_s = ttl_s

    def issue(self, user_id: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "sub": user_id,
            "iat": issued,
            "exp": issued + self._ttl_s,
            "iss": _ISSUER,
            "jti": uuid.uuid4().hex,
            "typ": "access",
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=_ISSUER,
                options={"require": ["sub", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if claims.get("typ") != "access":
            raise InvalidToken("not an access token")
        return TokenClaims(str(claims["sub"]), int(claims["exp"]), str(claims["jti"]))


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("ey")
