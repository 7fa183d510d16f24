"""The pure parts of OAuth login: state tokens, PKCE, userinfo shapes, usernames."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from accounts.credentials import InvalidToken, TokenIssuer, derive_key
from accounts.oauth import (
    InvalidState,
    OAuthProvider,
    ProviderIdentity,
    StateSigner,
    authorize_url,
    code_challenge,
    identity_from_userinfo,
    username_candidate,
)
from api.routes.account_forms import check_username

SECRET = "s" * 40
GITHUB = OAuthProvider(
    "github", "cid", "csecret", "https://gh.example/authorize", "https://gh/t", "https://gh/u", "x"
)


def test_state_round_trips_for_its_provider_only() -> None:
    signer = StateSigner(SECRET)
    state, nonce = signer.issue("github")
    assert signer.verify(state, "github") == nonce
    with pytest.raises(InvalidState):
        signer.verify(state, "gitlab")
    with pytest.raises(InvalidState):
        StateSigner("o" * 40).verify(state, "github")  # another deployment's secret
    head, body, sig = state.split(".")
    with pytest.raises(InvalidState):
        signer.verify(f"{head}.{body}A.{sig}", "github")


def test_state_expires() -> None:
    signer = StateSigner(SECRET, ttl_s=60)
    state, _ = signer.issue("github", now=time.time() - 3600)
    with pytest.raises(InvalidState):
        signer.verify(state, "github")


def test_state_and_access_tokens_cannot_stand_in_for_each_other() -> None:
    signer, issuer = StateSigner(SECRET), TokenIssuer(SECRET)
    access = issuer.issue("u1", "s1")
    with pytest.raises(InvalidState):
        signer.verify(access, "github")
    state, _ = signer.issue("github")
    # Even re-signed with the access key, a state is not an access token.
    claims = jwt.decode(state, options={"verify_signature": False})
    forged = jwt.encode(claims, derive_key(SECRET, "access-token"), algorithm="HS256")
    with pytest.raises(InvalidToken):
        issuer.verify(forged)


def test_pkce_verifier_is_derived_and_well_formed() -> None:
    signer = StateSigner(SECRET)
    verifier = signer.code_verifier("nonce-1")
    assert verifier == signer.code_verifier("nonce-1")
    assert verifier != signer.code_verifier("nonce-2")
    assert 43 <= len(verifier) <= 128
    # RFC 7636, appendix B.
    assert (
        code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_authorize_url_carries_the_flow_parameters() -> None:
    url = authorize_url(GITHUB, redirect_uri="http://me/cb", state="st", verifier="v" * 43)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == GITHUB.authorize_url
    assert query["client_id"] == "cid"
    assert query["response_type"] == "code"
    assert query["state"] == "st"
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == code_challenge("v" * 43)
    assert query["redirect_uri"] == "http://me/cb"


@pytest.mark.parametrize(
    ("userinfo", "expected"),
    [
        (
            {"id": 583231, "login": "octocat", "name": "The Octocat", "avatar_url": "https://a/1"},
            ProviderIdentity("583231", "octocat", "The Octocat", "https://a/1"),
        ),
        (
            {"id": 42, "username": "jdoe", "name": "J Doe", "avatar_url": None},
            ProviderIdentity("42", "jdoe", "J Doe", None),
        ),
        (
            {"sub": "abc-1", "preferred_username": "kc.user", "picture": "https://p"},
            ProviderIdentity("abc-1", "kc.user", None, "https://p"),
        ),
    ],
)
def test_identity_from_each_provider_shape(
    userinfo: dict[str, object], expected: ProviderIdentity
) -> None:
    assert identity_from_userinfo(userinfo) == expected


@pytest.mark.parametrize("userinfo", [{}, {"id": ""}, {"id": True}, {"login": "x"}])
def test_identity_needs_a_user_id(userinfo: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="id"):
        identity_from_userinfo(userinfo)


@pytest.mark.parametrize(
    ("login", "name", "expected"),
    [
        ("octocat", None, "octocat"),
        ("john.doe", None, "john-doe"),
        (None, "Ada Lovelace", "Ada-Lovelace"),
        ("x", None, "user-x"),
        (None, None, "user"),
        ("ü" * 5, None, "user"),
    ],
)
def test_username_candidates_are_valid_names(
    login: str | None, name: str | None, expected: str
) -> None:
    candidate = username_candidate(ProviderIdentity("1", login, name, None))
    assert candidate == expected
    assert check_username(candidate) == candidate
