"""Rate limits on a real ``codetrackr serve``, over the socket, with limits set low by env.

Clients connect from different loopback addresses (127.0.0.x; Linux routes the whole /8 to
``lo``), so each test has addresses of its own. ``127.0.0.2`` is configured as the trusted
proxy: only its forwarding headers name the client.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from codetrackr.settings import Settings
from tests.e2e.harness import CodeTrackrProcess

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

PROXY = "127.0.0.2"
LIMITS = {
    "CODETRACKR_RATE_LIMIT_AUTH": "4/minute",
    "CODETRACKR_RATE_LIMIT_GENERAL": "30/minute",
    "CODETRACKR_RATE_LIMIT_API_KEY": "6/hour",
    "CODETRACKR_TRUSTED_PROXIES": PROXY,
    # The shipped default, which the harness raises for the other e2e tests.
    "CODETRACKR_RATE_LIMIT_ACCOUNT_CREATION": Settings.model_fields[
        "rate_limit_account_creation"
    ].default,
}
CREATIONS_PER_MINUTE = 5
_addresses = (f"127.0.{a}.{b}" for a, b in itertools.product(range(1, 200), range(10, 250)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess(
        "serve", tmp_path_factory.mktemp("ratelimit") / "data", env=LIMITS
    ).start()
    yield proc
    proc.stop()


def connect(server: CodeTrackrProcess, source: str | None = None) -> httpx.Client:
    """A client whose connections come from ``source`` (a fresh address by default)."""
    transport = httpx.HTTPTransport(local_address=source or next(_addresses))
    return httpx.Client(base_url=server.url, transport=transport, timeout=30.0)


class User:
    """An account with an API key, made from an address of its own (the auth limit is low)."""

    def __init__(self, server: CodeTrackrProcess) -> None:
        with connect(server) as http:
            created = http.post("/auth/anonymous/create", json={})
            assert created.status_code == 201, created.text
            self.bearer = {"Authorization": f"Bearer {created.json()['token']}"}
            key = http.post("/api/v1/keys", headers=self.bearer, json={"name": "editor"})
            assert key.status_code == 200, key.text
            self.key = {"X-API-Key": key.json()["key"]["key"]}


def assert_too_many(response: httpx.Response, limit_class: str, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "too_many_requests"
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["details"]["class"] == limit_class
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit()
    assert int(retry_after) >= 1
    assert body["error"]["details"]["retry_after"] == int(retry_after)
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= 1


def login(http: httpx.Client, **headers: str) -> httpx.Response:
    return http.post(
        "/auth/anonymous/login", json={"account_number": "A" + "0" * 40}, headers=headers
    )


def test_auth_endpoints_answer_429_per_address(server: CodeTrackrProcess) -> None:
    with connect(server) as flooder, connect(server) as neighbour:
        tries = [login(flooder) for _ in range(4)]
        assert [r.status_code for r in tries] == [401] * 4
        assert [r.headers["X-RateLimit-Remaining"] for r in tries] == ["3", "2", "1", "0"]
        assert_too_many(login(flooder), "auth", 4)
        assert_too_many(login(flooder), "auth", 4)  # still refused, not counted
        # Account creation is a class of its own, not refused by the auth class's budget.
        created = flooder.post("/auth/anonymous/create", json={})
        assert created.status_code == 201
        assert created.headers["X-RateLimit-Limit"] == str(CREATIONS_PER_MINUTE)

        # Another address is not affected; neither are other classes nor the health check.
        assert login(neighbour).status_code == 401
        schema = flooder.get("/openapi.json")
        assert schema.status_code == 200
        assert schema.headers["X-RateLimit-Limit"] == "30"
        for _ in range(40):
            for probe in ("/healthz", "/readyz"):
                health = flooder.get(probe)
                assert health.status_code == 200, health.text
                assert "X-RateLimit-Limit" not in health.headers


def test_anonymous_account_creation_is_limited_to_a_few_a_minute_per_address(
    server: CodeTrackrProcess,
) -> None:
    with connect(server) as creator, connect(server) as neighbour:
        made = [creator.post("/auth/anonymous/create", json={}) for _ in range(5)]
        assert [r.status_code for r in made] == [201] * 5
        assert [r.headers["X-RateLimit-Remaining"] for r in made] == ["4", "3", "2", "1", "0"]
        assert_too_many(creator.post("/auth/anonymous/create", json={}), "account_creation", 5)
        # Logging in is another class, and another address has its own budget.
        assert login(creator).status_code == 401
        assert neighbour.post("/auth/anonymous/create", json={}).status_code == 201


def test_api_key_over_its_hourly_budget_is_refused_others_are_not(
    server: CodeTrackrProcess,
) -> None:
    alice, bob = User(server), User(server)
    beat = {"project": "limits", "file": "a.py", "lang": "python", "duration": 30}
    with connect(server) as editor:
        sent = [editor.post("/api/v1/heartbeat", headers=alice.key, json=beat) for _ in range(6)]
        assert [r.status_code for r in sent] == [200] * 6
        assert [r.headers["X-RateLimit-Limit"] for r in sent] == ["6"] * 6
        assert [r.headers["X-RateLimit-Remaining"] for r in sent] == ["5", "4", "3", "2", "1", "0"]

        over = editor.post("/api/v1/heartbeat", headers=alice.key, json=beat)
        assert_too_many(over, "api_key", 6)
        assert int(over.headers["Retry-After"]) <= 3600
        # WakaTime clients get the whole-request 429, so they keep the batch and retry later.
        bulk = [{"entity": "/a.py", "type": "file", "time": 1_700_000_000, "project": "limits"}]
        waka = editor.post("/api/v1/users/current/heartbeats.bulk", headers=alice.key, json=bulk)
        assert_too_many(waka, "api_key", 6)

        # Bob's key, from the same address, has its own budget; Alice's login token has none.
        other = editor.post("/api/v1/heartbeat", headers=bob.key, json=beat)
        assert other.status_code == 200
        assert other.headers["X-RateLimit-Remaining"] == "5"
        me = editor.get("/api/v1/user/me", headers=alice.bearer)
        assert me.status_code == 200
        assert me.headers["X-RateLimit-Limit"] == "30"  # the address's general limit


def test_forwarding_headers_name_the_client_only_from_the_trusted_proxy(
    server: CodeTrackrProcess,
) -> None:
    with connect(server, PROXY) as proxy:
        client = "198.51.100.7"
        assert [login(proxy, **{"X-Forwarded-For": client}).status_code for _ in range(4)] == [
            401
        ] * 4
        assert_too_many(login(proxy, **{"X-Forwarded-For": client}), "auth", 4)
        # A prefix the client wrote itself changes nothing: the proxy's entry is the last one.
        assert_too_many(login(proxy, **{"X-Forwarded-For": f"6.6.6.6, {client}"}), "auth", 4)
        # Another client behind the same proxy, and the seed's first-priority header.
        assert login(proxy, **{"X-Forwarded-For": "198.51.100.8"}).status_code == 401
        assert login(proxy, **{"CF-Connecting-IP": "198.51.100.9"}).status_code == 401

    with connect(server) as direct:
        spoofed = [login(direct, **{"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(3)]
        spoofed.append(login(direct, **{"CF-Connecting-IP": "203.0.113.50"}))
        assert [r.status_code for r in spoofed] == [401] * 4
        assert_too_many(login(direct, **{"X-Real-IP": "203.0.113.51"}), "auth", 4)


def test_keys_that_do_not_authenticate_spend_the_address_budget(
    server: CodeTrackrProcess,
) -> None:
    carol = User(server)
    wrong = {"X-API-Key": "00000000-0000-4000-8000-000000000000"}
    with connect(server) as guesser, connect(server) as editor:
        guesses = [guesser.get("/api/v1/user/me", headers=wrong) for _ in range(30)]
        assert {r.status_code for r in guesses} == {401}
        assert guesses[-1].headers["X-RateLimit-Remaining"] == "0"
        assert_too_many(guesser.get("/api/v1/user/me", headers=wrong), "general", 30)
        # From that address even a valid key waits: the address used up its general budget.
        assert_too_many(guesser.get("/api/v1/user/me", headers=carol.key), "general", 30)
        # The key itself is fine from anywhere else, and was not charged by the refusal.
        mine = editor.get("/api/v1/user/me", headers=carol.key)
        assert mine.status_code == 200
        assert mine.headers["X-RateLimit-Remaining"] == "5"
