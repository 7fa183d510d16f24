"""Fuzz every operation of a real ``codetrackr serve`` with schemathesis, over the socket.

The schema is the one the running server publishes (``/openapi.json``). Each operation gets
valid (positive) and invalid (negative) cases, sent as a logged-in user: mostly with the login
token (JWT), some with the API key in each place editors put it; the ``/auth`` endpoints and
``/healthz`` without credentials. Every response must be JSON (CSV downloads and documented
text answers aside), never a
5xx (a 503 with the envelope is a legitimate "log/store unavailable" answer, counted and
reported), conform to the documented status codes, media types and schemas, and every error must
be in the envelope ``{"error": {"code": str, "message": str, "details": object}}``.

Generation is derandomized (the same cases on every run); the server's answers vary only with
what earlier cases created (accounts, keys, heartbeats).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from http_edge.errors import in_seed_style
from tests.e2e.harness import Client, CodeTrackrProcess

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.slow]

MIN_REQUESTS = 1000
# Per operation and generation mode; operations with a small input space run out earlier. Raise
# it for a deeper local run: CODETRACKR_FUZZ_EXAMPLES=500 pytest tests/e2e/test_api_fuzz.py
MAX_EXAMPLES = int(os.environ.get("CODETRACKR_FUZZ_EXAMPLES", "45"))
# Derandomized by default (the same cases on every run); CODETRACKR_FUZZ_SEED=<n> explores others.
SEED = os.environ.get("CODETRACKR_FUZZ_SEED")
# Weighted like real traffic: dashboards log in (JWT), editors send an API key.
AUTH_MIX = ("jwt",) * 6 + ("x-api-key", "bearer-key", "basic-key", "query-key")
UNAUTHENTICATED = ("/auth/", "/healthz")

CONFIG = schemathesis.Config.from_dict(
    {
        # 503 means "the log or the store is unavailable, nothing was written, retry": a
        # legitimate answer, as long as it has the envelope (checked below), and counted.
        "checks": {"not_a_server_error": {"expected-statuses": ["2XX", "3XX", "4XX", 503]}},
    }
)


def error_envelope(ctx: CheckContext, response: schemathesis.Response, case: Any) -> None:
    """Every answer is JSON (but a CSV download, or the text of Wakapi's health check and
    Prometheus metrics, which ``content_type_conformance`` checks are documented); every error
    is ``{"error": {"code", "message", "details"}}``, but on the AI API's seed paths, which
    answer the Claude Code Tracker's shape (``{"error": true, "message", "code", "details"}``)."""
    content_type = response.headers.get("content-type", [""])[0]
    if response.status_code < 400 and content_type.startswith(("text/csv", "text/plain")):
        return
    assert content_type.startswith("application/json"), f"not JSON: {content_type!r}"
    body = json.loads(response.content)
    if response.status_code < 400:
        return
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    if in_seed_style(urlsplit(response.request.url).path):
        assert set(body) == {"error", "message", "code", "details"}, f"seed error {body!r}"
        assert body["error"] is True
        assert isinstance(body["code"], str), f"bad code {body['code']!r}"
        assert isinstance(body["message"], str), f"bad message {body['message']!r}"
        assert isinstance(body["details"], dict), f"bad details {body['details']!r}"
        return
    assert set(body) == {"error"}, f"error body has keys {sorted(body)}, expected ['error']"
    error = body["error"]
    assert isinstance(error, dict), f"error is not an object: {error!r}"
    assert set(error) == {"code", "message", "details"}, f"error has keys {sorted(error)}"
    assert isinstance(error["code"], str), f"bad code {error['code']!r}"
    assert isinstance(error["message"], str), f"bad message {error['message']!r}"
    assert isinstance(error["details"], dict), f"bad details {error['details']!r}"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_envelope,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("fuzz") / "data").start()
    yield proc
    proc.stop()


def credentials(user: Client, how: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, query parameters) that authenticate ``user`` the way ``how`` says."""
    key = user.api_key
    if how == "jwt":
        return user.bearer, {}
    if how == "x-api-key":
        return user.key_header, {}
    if how == "bearer-key":
        return {"Authorization": f"Bearer {key}"}, {}
    if how == "basic-key":
        return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}, {}
    assert how == "query-key", how
    return {}, {"api_key": key}


def can_be_invalid(operation: Any) -> bool:
    """Whether negative cases exist: a body or query parameters (a free-form path segment such
    as ``{key_id}`` has no invalid values, and hypothesis would give up on it)."""
    return bool(len(operation.body) or len(operation.query))


class Tally:
    """What was sent and what came back, for the assertions and the report."""

    def __init__(self) -> None:
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.by_operation: Counter[str] = Counter()
        self.ok_by_operation: Counter[str] = Counter()
        self.ok_by_auth: Counter[str] = Counter()
        self.by_auth: Counter[str] = Counter()

    def record(self, label: str, auth: str, status: int) -> None:
        self.requests += 1
        self.statuses[status] += 1
        self.by_operation[label] += 1
        self.by_auth[auth] += 1
        if 200 <= status < 300:
            self.ok_by_auth[auth] += 1
            self.ok_by_operation[label] += 1

    def report(self) -> str:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        operations = "\n".join(
            f"  {n:4d} ({self.ok_by_operation[label]:3d} 2xx)  {label}"
            for label, n in sorted(self.by_operation.items())
        )
        auth = ", ".join(
            f"{how}: {n} ({self.ok_by_auth[how]} 2xx)" for how, n in self.by_auth.items()
        )
        return (
            f"{self.requests} requests; statuses {{{statuses}}}; "
            f"503s: {self.statuses[503]}\nauth: {auth}\nper operation:\n{operations}"
        )


def test_fuzz_every_operation_over_http(
    server: CodeTrackrProcess, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    # No timezone of its own, so ingest reads the `Timezone` header (the fuzzer sends it).
    user = Client(server.url)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=CONFIG)
    loaded = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in loaded), "the server's schema does not load"
    operations = [result.ok() for result in loaded if isinstance(result, Ok)]
    tally = Tally()
    session = requests.Session()  # keep-alive: a connection per request would dominate the time

    def fuzz(operation: Any, mode: GenerationMode) -> None:
        public = operation.path.startswith(UNAUTHENTICATED)
        strategies = [operation.as_strategy(generation_mode=mode)]
        if "{user}" in operation.path:
            # Mostly the caller's own heartbeats ("current" or their name), else someone else's.
            strategies = [
                operation.as_strategy(generation_mode=mode, path_parameters={"user": name})
                for name in ("current", user.username)
            ] + strategies

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=SEED is None,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(case=st.one_of(strategies), auth=st.sampled_from(AUTH_MIX))
        def run(case: Any, auth: str) -> None:
            how = "none" if public else auth
            headers, params = credentials(user, how) if not public else ({}, {})
            response = case.call(
                base_url=server.url, session=session, headers=headers, params=params
            )
            tally.record(operation.label, how, response.status_code)
            case.validate_response(response, checks=CHECKS, headers=headers)

        if SEED is not None:
            run = seed(int(SEED))(run)
        try:
            run()
        except Exception as exc:
            exc.add_note(f"while fuzzing {operation.label} ({mode.value} cases)")
            raise

    with session:
        for operation in operations:
            fuzz(operation, GenerationMode.POSITIVE)
            if can_be_invalid(operation):
                fuzz(operation, GenerationMode.NEGATIVE)

    elapsed = time.monotonic() - started
    report = f"{tally.report()}\nin {elapsed:.1f} s"
    record_property("fuzz_report", report)
    with capsys.disabled():
        print(f"\n{report}")
    assert tally.requests >= MIN_REQUESTS, report
    assert set(tally.by_operation) == {op.label for op in operations}, report
    # The mix really authenticated: each way of sending credentials got through at least once.
    assert all(tally.ok_by_auth[how] > 0 for how in set(AUTH_MIX)), report
    assert tally.by_auth["jwt"] > sum(n for how, n in tally.by_auth.items() if how.endswith("-key"))
    assert all(status < 500 or status == 503 for status in tally.statuses), report
