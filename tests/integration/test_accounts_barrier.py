"""Revocation is effective on the next request in every process, even one that lags.

Two account directories on one log stand for two processes; the second one's tail is slowed
down so its state is visibly behind. Its authenticator, syncing with the log before every check
(``shared_log``), still refuses a session or key the first one revoked a moment ago. Runs on the
embedded log (two readers of one file) and on a real Kafka-protocol broker (two clients).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.requests import Request

from accounts.credentials import TokenIssuer, hash_secret, new_api_key
from accounts.directory import AccountDirectory, new_event_id
from accounts.sessions import SessionService
from eventlog.embedded import SqliteEventLog
from eventlog.kafka import KafkaEventLog
from eventlog.port import EventLog, LogReader
from http_edge.auth import Authenticator
from http_edge.errors import ApiError
from schemas.events import ACCOUNTS_TOPIC, AccountCreated, ApiKeyCreated, ApiKeyRevoked
from tests.brokers import Broker, NoidaBroker

TAIL_DELAY_S = 1.0
SECRET = "b" * 40


@pytest.fixture(scope="module")
def noida() -> Iterator[Broker]:
    broker = NoidaBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@dataclass
class Processes:
    first: AccountDirectory
    second: AccountDirectory  # its tail lags by TAIL_DELAY_S


def _kafka(broker: Broker, name: str) -> KafkaEventLog:
    return KafkaEventLog(
        broker.bootstrap, client_id=name, request_timeout_ms=5000, session_timeout_ms=6000
    )


@pytest.fixture(params=["sqlite", pytest.param("noida", marks=pytest.mark.kafka)])
async def processes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Processes]:
    logs: list[EventLog]
    if request.param == "sqlite":
        shared = SqliteEventLog(tmp_path / "log.sqlite")
        logs = [shared, shared]
    else:
        broker: Broker = request.getfixturevalue("noida")
        logs = [_kafka(broker, "first"), _kafka(broker, "second")]
    for log in dict.fromkeys(logs):
        await log.start()
        await log.ensure_topics({ACCOUNTS_TOPIC: 1})
    first = AccountDirectory(logs[0], shared_log=True)
    second = AccountDirectory(logs[1], shared_log=True)
    fetch = second._read_some

    async def lagging(reader: LogReader) -> None:
        await asyncio.sleep(TAIL_DELAY_S)
        await fetch(reader)

    second._read_some = lagging  # type: ignore[method-assign]
    await first.start()
    await second.start()
    try:
        yield Processes(first, second)
    finally:
        await second.close()
        await first.close()
        for log in dict.fromkeys(logs):
            await log.close()


def request_with(header: str, value: str) -> Request:
    headers = [(header.encode(), value.encode())]
    return Request({"type": "http", "method": "GET", "headers": headers, "query_string": b""})


async def _account(directory: AccountDirectory) -> str:
    event = AccountCreated(
        event_id=new_event_id(),
        user_id=new_event_id(),
        occurred_at=time.time(),
        username=f"u-{new_event_id()[:12]}",
        account_number_hash=hash_secret(new_event_id()),
    )
    assert await directory.record(event)
    return event.user_id


async def test_a_logout_is_refused_by_a_lagging_process(processes: Processes) -> None:
    tokens = TokenIssuer(SECRET)
    first = processes.first
    user_id = await _account(first)
    user = first.state.users[user_id]
    pair = await SessionService(first, tokens).start(user, method="anonymous")
    assert pair is not None
    login = request_with("authorization", f"Bearer {pair.access_token}")
    second = Authenticator(processes.second, tokens)
    assert (await second.authenticate(login)).session_id == pair.session_id
    await SessionService(first, tokens).revoke(
        first.state.sessions[pair.session_id], reason="logout"
    )
    # The second process has not read the logout yet...
    assert pair.session_id in processes.second.state.sessions
    # ...and refuses the token all the same: it syncs with the log before it answers.
    with pytest.raises(ApiError) as refused:
        await second.authenticate(login)
    assert refused.value.status == 401
    assert pair.session_id not in processes.second.state.sessions


async def test_a_deleted_key_is_refused_by_a_lagging_process(processes: Processes) -> None:
    tokens = TokenIssuer(SECRET)
    first = processes.first
    user_id = await _account(first)
    secret = new_api_key()
    created = ApiKeyCreated(
        event_id=new_event_id(),
        user_id=user_id,
        occurred_at=time.time(),
        key_id=new_event_id(),
        name="editor",
        key_hash=hash_secret(secret),
        key_prefix=secret[:12],
    )
    assert await first.record(created)
    second = Authenticator(processes.second, tokens)
    with_key = request_with("x-api-key", secret)
    assert (await second.authenticate(with_key)).key_id == created.key_id
    revoked = ApiKeyRevoked(
        event_id=new_event_id(), user_id=user_id, occurred_at=time.time(), key_id=created.key_id
    )
    assert await first.record(revoked)
    assert created.key_id in processes.second.state.keys_by_id
    with pytest.raises(ApiError) as refused:
        await second.authenticate(with_key)
    assert refused.value.status == 401
