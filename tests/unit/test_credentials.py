from __future__ import annotations

import re
import time

import jwt
import pytest

from accounts.credentials import (
    ACCOUNT_NUMBER_BITS,
    InvalidToken,
    TokenIssuer,
    hash_secret,
    new_account_number,
    new_api_key,
    normalize_api_key,
)

# The pattern wakatime-cli checks keys against before it sends anything.
WAKATIME_CLI_KEY = re.compile(
    r"^(waka_)?[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$"
)
SECRET = "s" * 40


def test_new_api_key_is_accepted_by_wakatime_clients() -> None:
    for _ in range(50):
        assert WAKATIME_CLI_KEY.match(new_api_key())


def test_normalize_api_key_strips_prefix_and_rejects_garbage() -> None:
    key = new_api_key()
    assert normalize_api_key(f"waka_{key}") == key
    assert normalize_api_key(key.upper()) == key
    assert normalize_api_key("ct_notakey") is None


def test_account_numbers_are_long_and_distinct() -> None:
    numbers = {new_account_number() for _ in range(100)}
    assert len(numbers) == 100
    assert all(len(n) == 41 and n.startswith("A") for n in numbers)
    assert ACCOUNT_NUMBER_BITS >= 128
    assert hash_secret("a") != "a"
    assert len(hash_secret("a")) == 64


def test_tokens_round_trip() -> None:
    issuer = TokenIssuer(SECRET)
    claims = issuer.verify(issuer.issue("u1", "s1"))
    assert (claims.user_id, claims.session_id) == ("u1", "s1")


def test_tokens_expired_tampered_or_foreign_are_rejected() -> None:
    issuer = TokenIssuer(SECRET, ttl_s=10)
    expired = issuer.issue("u1", "s1", now=time.time() - 3600)
    with pytest.raises(InvalidToken):
        issuer.verify(expired)
    token = issuer.issue("u1", "s1")
    head, body, sig = token.split(".")
    with pytest.raises(InvalidToken):
        issuer.verify(f"{head}.{body}x.{sig}")
    foreign = jwt.encode({"sub": "u1", "exp": time.time() + 60}, "o" * 40, algorithm="HS256")
    with pytest.raises(InvalidToken):
        issuer.verify(foreign)


def test_token_issuer_refuses_short_secrets() -> None:
    with pytest.raises(ValueError, match="32"):
        TokenIssuer("short")
