"""Whom a request is counted against: the client address (``http_edge.client_ip``), the limit
class of its path and whether it carries an API key (``http_edge.ratelimit_http``), and the
rate-limit settings. Pure functions: no sockets, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Address
from pathlib import Path

import pytest
from fastapi import FastAPI
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from codetrackr.bootstrap import Role, create_app
from codetrackr.settings import Settings
from http_edge.client_ip import (
    DEFAULT_HEADERS,
    IpAddress,
    parse_networks,
    rate_limit_key,
    resolve_client_ip,
)
from http_edge.ratelimit import Decision, LimitClass, parse_limits
from http_edge.ratelimit_http import RateLimitMiddleware, carries_api_key, classify

PROXY = "10.0.0.5"
TRUSTED = parse_networks(["10.0.0.0/24", "2001:db8:ffff::/48"])


def ip(
    peer: str | None, *headers: tuple[str, str], trusted: Sequence[str] = ("10.0.0.0/24",)
) -> str:
    return resolve_client_ip(peer, headers, parse_networks(trusted))


# ---- the socket peer, unless it is a trusted proxy -----------------------------------------


def test_client_ip_is_the_peer_without_trusted_proxies() -> None:
    assert ip("198.51.100.7", trusted=()) == "198.51.100.7"
    assert ip("198.51.100.7", ("X-Forwarded-For", "1.2.3.4"), trusted=()) == "198.51.100.7"


@pytest.mark.parametrize("header", DEFAULT_HEADERS)
def test_client_ip_ignores_forwarding_headers_from_an_untrusted_peer(header: str) -> None:
    assert ip("198.51.100.7", (header, "203.0.113.9")) == "198.51.100.7"


def test_client_ip_spoofed_headers_cannot_pick_a_bucket_from_outside() -> None:
    spoofed = [
        ("CF-Connecting-IP", "10.0.0.1"),
        ("X-Forwarded-For", "203.0.113.1, 10.0.0.5"),
        ("X-Real-IP", "127.0.0.1"),
        ("True-Client-IP", "::1"),
    ]
    assert ip("198.51.100.7", *spoofed) == "198.51.100.7"


@pytest.mark.parametrize("header", DEFAULT_HEADERS)
def test_client_ip_reads_each_documented_header_from_a_trusted_proxy(header: str) -> None:
    assert ip(PROXY, (header, "203.0.113.9")) == "203.0.113.9"


def test_client_ip_follows_the_documented_priority() -> None:
    everything = [
        ("X-Client-IP", "203.0.113.5"),
        ("X-Real-IP", "203.0.113.4"),
        ("X-Forwarded-For", "203.0.113.3"),
        ("True-Client-IP", "203.0.113.2"),
        ("CF-Connecting-IP", "203.0.113.1"),
    ]
    assert ip(PROXY, *everything) == "203.0.113.1"
    assert ip(PROXY, *everything[:4]) == "203.0.113.2"
    assert ip(PROXY, *everything[:3]) == "203.0.113.3"
    assert ip(PROXY, *everything[:2]) == "203.0.113.4"
    assert ip(PROXY, *everything[:1]) == "203.0.113.5"


def test_client_ip_header_names_are_case_insensitive() -> None:
    assert ip(PROXY, ("x-forwarded-for", "203.0.113.9")) == "203.0.113.9"
    assert ip(PROXY, ("CF-CONNECTING-IP", "203.0.113.8")) == "203.0.113.8"


def test_client_ip_reads_only_the_configured_headers_in_their_order() -> None:
    headers = [("CF-Connecting-IP", "203.0.113.1"), ("X-Forwarded-For", "203.0.113.2")]
    only_xff = resolve_client_ip(PROXY, headers, TRUSTED, ["X-Forwarded-For"])
    assert only_xff == "203.0.113.2"
    assert resolve_client_ip(PROXY, headers, TRUSTED, []) == PROXY


def test_client_ip_is_the_proxy_when_it_forwards_nothing() -> None:
    assert ip(PROXY) == PROXY
    assert ip(PROXY, ("X-Forwarded-For", "")) == PROXY


# ---- X-Forwarded-For chains ----------------------------------------------------------------


def test_forwarded_for_takes_the_rightmost_address_not_a_trusted_proxy() -> None:
    # The client wrote "6.6.6.6" itself; our proxy appended the address it saw connect.
    assert ip(PROXY, ("X-Forwarded-For", "6.6.6.6, 203.0.113.9")) == "203.0.113.9"
    # Two of our proxies in a row: skip both.
    chain = "6.6.6.6, 203.0.113.9, 10.0.0.7, 10.0.0.8"
    assert ip(PROXY, ("X-Forwarded-For", chain)) == "203.0.113.9"


def test_forwarded_for_joins_repeated_headers_in_order() -> None:
    found = ip(PROXY, ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9, 10.0.0.7"))
    assert found == "203.0.113.9"


def test_forwarded_for_of_only_trusted_proxies_names_the_leftmost() -> None:
    assert ip(PROXY, ("X-Forwarded-For", "10.0.0.1, 10.0.0.2")) == "10.0.0.1"


def test_forwarded_for_garbage_where_the_client_should_be_falls_to_the_next_header() -> None:
    assert ip(PROXY, ("X-Forwarded-For", "203.0.113.9, not-an-ip")) == PROXY
    garbage_then_real = [("X-Forwarded-For", "unknown"), ("X-Real-IP", "203.0.113.4")]
    assert ip(PROXY, *garbage_then_real) == "203.0.113.4"
    assert ip(PROXY, ("CF-Connecting-IP", "1.2.3"), ("X-Forwarded-For", "203.0.113.9")) == (
        "203.0.113.9"
    )


def test_forwarded_for_entries_with_ports_and_brackets() -> None:
    assert ip(PROXY, ("X-Forwarded-For", "203.0.113.9:4711")) == "203.0.113.9"
    assert ip(PROXY, ("X-Forwarded-For", "[2001:db8::1]:443")) == "2001:db8::1"
    assert ip(PROXY, ("X-Forwarded-For", "[2001:db8::2]")) == "2001:db8::2"
    assert ip(PROXY, ("X-Forwarded-For", "2001:db8::3")) == "2001:db8::3"
    assert ip(PROXY, ("X-Forwarded-For", '"203.0.113.9"')) == "203.0.113.9"


def test_client_ip_ipv6_peers_and_mapped_ipv4() -> None:
    trusted = ("2001:db8:ffff::/48",)
    assert ip("2001:db8:ffff::1", ("X-Real-IP", "2001:db8::9"), trusted=trusted) == "2001:db8::9"
    assert ip("2001:db8:aaaa::1", ("X-Real-IP", "2001:db8::9"), trusted=trusted) == (
        "2001:db8:aaaa::1"
    )
    assert ip("::ffff:10.0.0.5", ("X-Real-IP", "203.0.113.9")) == "203.0.113.9"
    assert ip("::ffff:198.51.100.7", trusted=()) == "198.51.100.7"


def test_client_ip_without_a_usable_peer() -> None:
    assert ip(None, ("X-Forwarded-For", "203.0.113.9")) == "unknown"
    assert ip("testclient", ("X-Forwarded-For", "203.0.113.9")) == "testclient"


@given(st.lists(st.ip_addresses().map(str), min_size=1, max_size=8), st.ip_addresses())
def test_forwarded_for_prefix_written_by_a_client_never_matters(
    spoofed: list[str], real: IpAddress
) -> None:
    # Whatever a client puts before the entry our proxy appends, the answer is that entry
    # (unless that entry is one of our proxies, which only our proxies can be).
    assume(not any(real in net for net in TRUSTED))
    assume(not (isinstance(real, IPv6Address) and real.ipv4_mapped is not None))
    chain = ", ".join([*spoofed, str(real)])
    assert ip(PROXY, ("X-Forwarded-For", chain)) == str(real)


# ---- buckets and networks ------------------------------------------------------------------


def test_rate_limit_key_groups_ipv6_by_64() -> None:
    assert rate_limit_key("203.0.113.9") == "203.0.113.9"
    assert rate_limit_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert rate_limit_key("2001:db8:1:2:bbbb::9") == rate_limit_key("2001:db8:1:2:aaaa::1")
    assert rate_limit_key("2001:db8:1:3::1") != rate_limit_key("2001:db8:1:2::1")
    assert rate_limit_key("unknown") == "unknown"


def test_parse_networks_accepts_addresses_and_cidrs() -> None:
    found = parse_networks(["127.0.0.1", " 10.0.0.0/8 ", "::1", "2001:db8::/32", ""])
    assert [str(n) for n in found] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "2001:db8::/32"]
    assert [str(n) for n in parse_networks(["10.1.2.3/8"])] == ["10.0.0.0/8"]  # host bits: ok


@pytest.mark.parametrize("bad", ["localhost", "10.0.0.0/33", "1.2.3", "10.0.0.1, 10.0.0.2"])
def test_parse_networks_refuses_what_is_not_an_address(bad: str) -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        parse_networks([bad])


# ---- classes and credentials ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/auth/anonymous/login", LimitClass.AUTH),
        ("/auth/anonymous/create", LimitClass.ACCOUNT_CREATION),
        ("/auth/anonymous/verify", LimitClass.AUTH),
        ("/badge/alice/coding-time", LimitClass.BADGES),
        ("/badge/alice/heatmap", LimitClass.BADGES),
        ("/api/v1/user/badge/alice/python", LimitClass.BADGES),
        ("/webhooks/github", LimitClass.WEBHOOKS),
        ("/api/v1/webhooks/x", LimitClass.WEBHOOKS),
        ("/api/v1/heartbeat", LimitClass.GENERAL),
        ("/api/v1/users/current/heartbeats.bulk", LimitClass.GENERAL),
        ("/api/v1/stats/summary", LimitClass.GENERAL),
        ("/authx", LimitClass.GENERAL),
        ("/badges", LimitClass.GENERAL),
        ("/", LimitClass.GENERAL),
    ],
)
def test_classify_by_path(path: str, expected: LimitClass) -> None:
    assert classify(path) is expected


def _scope(*headers: tuple[str, str], query: str = "") -> dict[str, object]:
    return {
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "query_string": query.encode(),
    }


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
KEY = "6f1c0a52-3d1e-4b8e-9d3a-6a5c2f7e8b90"


@pytest.mark.parametrize(
    "scope",
    [
        _scope(("X-API-Key", KEY)),
        _scope(("X-API-Key", "not even a key")),
        _scope(("Authorization", f"Bearer {KEY}")),
        _scope(("Authorization", "Basic dGVzdA==")),
        _scope(query=f"api_key={KEY}"),
        _scope(query=f"range=7d&api_key={KEY}"),
    ],
)
def test_carries_api_key_where_the_authenticator_reads_one(scope: dict[str, object]) -> None:
    assert carries_api_key(scope)


@pytest.mark.parametrize(
    "scope",
    [
        _scope(),
        _scope(("Authorization", f"Bearer {JWT}")),
        _scope(("Authorization", "Bearer ")),
        _scope(("Authorization", "Token abc")),
        _scope(("X-API-Key", " ")),
        _scope(query="api_key="),
        _scope(query="xapi_key=1&range=7d"),
    ],
)
def test_carries_no_api_key(scope: dict[str, object]) -> None:
    assert not carries_api_key(scope)


# ---- decisions and settings ----------------------------------------------------------------


def test_decision_headers() -> None:
    allowed = Decision(allowed=True, limit=10, remaining=3, reset_at=1000.2)
    assert allowed.headers(now=990.0) == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": "11",
    }
    refused = Decision(allowed=False, limit=10, remaining=0, reset_at=1000.0, retry_after_s=10)
    assert refused.headers(now=990.0)["Retry-After"] == "10"
    assert Decision(allowed=True, enforced=False).headers() == {}


def test_parse_limits() -> None:
    assert [str(i) for i in parse_limits("250/second;12000/minute")] == [
        "250 per 1 second",
        "12000 per 1 minute",
    ]
    assert [str(i) for i in parse_limits("1000 per hour")] == ["1000 per 1 hour"]
    assert parse_limits("  ") == ()
    with pytest.raises(ValueError, match="rate limit 'lots'"):
        parse_limits("lots")


def test_settings_rate_limit_defaults_follow_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"CODETRACKR_{name.upper()}", raising=False)
    settings = Settings()
    assert settings.rate_limit_enabled
    limits = {c: [str(i) for i in parse_limits(s)] for c, s in settings.rate_limits().items()}
    assert limits == {
        LimitClass.GENERAL: ["250 per 1 second", "12000 per 1 minute"],
        LimitClass.AUTH: ["120 per 1 second", "6000 per 1 minute"],
        LimitClass.ACCOUNT_CREATION: ["5 per 1 minute", "30 per 1 hour"],
        LimitClass.WEBHOOKS: ["15 per 1 second", "600 per 1 minute"],
        LimitClass.BADGES: ["90 per 1 second", "1800 per 1 minute"],
        LimitClass.API_KEY: ["1000 per 1 hour"],
    }
    assert settings.trusted_proxy_networks() == ()
    assert tuple(settings.client_ip_headers) == DEFAULT_HEADERS


def test_settings_read_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODETRACKR_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    monkeypatch.setenv("CODETRACKR_CLIENT_IP_HEADERS", '["X-Forwarded-For"]')
    monkeypatch.setenv("CODETRACKR_RATE_LIMIT_API_KEY", "5 per hour")
    monkeypatch.setenv("CODETRACKR_RATE_LIMIT_BADGES", "")
    settings = Settings()
    assert [str(n) for n in settings.trusted_proxy_networks()] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert settings.client_ip_headers == ["X-Forwarded-For"]
    assert settings.rate_limits()[LimitClass.API_KEY] == "5 per hour"
    assert parse_limits(settings.rate_limits()[LimitClass.BADGES]) == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CODETRACKR_TRUSTED_PROXIES", "proxy.internal"),
        ("CODETRACKR_TRUSTED_PROXIES", "10.0.0.0/40"),
        ("CODETRACKR_RATE_LIMIT_GENERAL", "fast"),
        ("CODETRACKR_RATE_LIMIT_API_KEY", "1000/fortnight"),
    ],
)
def test_settings_refuse_bad_rate_limit_values(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize("role", ["serve", "ingest", "api"])
def test_every_http_role_is_rate_limited_unless_switched_off(role: Role, tmp_path: Path) -> None:
    def limited(app: FastAPI) -> bool:
        return any(m.cls is RateLimitMiddleware for m in app.user_middleware)

    assert limited(create_app(Settings(data_dir=tmp_path), role))
    assert not limited(create_app(Settings(data_dir=tmp_path, rate_limit_enabled=False), role))
