"""Accounts across processes on a real Kafka-protocol broker: two ``codetrackr api`` processes
and an ``ingest`` process share the accounts topic. Whatever one process records (a logout, a
revoked session or key, a rotated refresh token, a username) is honoured by the others on the
very next request, with no waiting in between."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.brokers import Broker, NoidaBroker
from tests.e2e.harness import Client, CodeTrackrProcess

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

ENV_SECRET = "distributed-accounts-" + "d" * 40


@dataclass
class Cluster:
    one: CodeTrackrProcess
    two: CodeTrackrProcess
    ingest: CodeTrackrProcess


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("accounts-distributed")
    broker: Broker = NoidaBroker(work_dir=work / "broker")
    broker.start()
    env = {
        "CODETRACKR_EVENT_LOG_URL": f"kafka://{broker.bootstrap}",
        "CODETRACKR_JWT_SECRET": ENV_SECRET,
        "CODETRACKR_HEARTBEAT_PARTITIONS": "1",
    }
    started: list[CodeTrackrProcess] = []
    try:
        # chdb allows one process per data directory: each api process gets its own.
        for name, role in (("one", "api"), ("two", "api"), ("ingest", "ingest")):
            started.append(CodeTrackrProcess(role, work / name, env=env).start())
        yield Cluster(*started)
    finally:
        for proc in reversed(started):
            proc.stop()
        broker.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(process: CodeTrackrProcess, headers: dict[str, str]) -> int:
    return httpx.get(f"{process.url}/api/v1/user/me", headers=headers, timeout=30).status_code


def beat(process: CodeTrackrProcess, headers: dict[str, str]) -> int:
    return httpx.post(
        f"{process.url}/api/v1/heartbeat", headers=headers, json={"project": "p"}, timeout=30
    ).status_code


def test_logout_and_revocations_hold_on_the_next_request_everywhere(cluster: Cluster) -> None:
    user = Client(cluster.one.url)  # account, session and key created through process one
    assert me(cluster.two, user.bearer) == 200
    assert beat(cluster.ingest, user.key_header) == 200
    # Logout through process one; process two refuses the token on the very next request.
    assert httpx.post(f"{cluster.one.url}/auth/logout", headers=user.bearer).status_code == 200
    assert me(cluster.two, user.bearer) == 401
    # A session revoked from the list on process two is refused by process one at once.
    laptop = httpx.post(
        f"{cluster.two.url}/auth/anonymous/login", json={"account_number": user.account_number}
    ).json()
    phone = httpx.post(
        f"{cluster.one.url}/auth/anonymous/login", json={"account_number": user.account_number}
    ).json()
    assert me(cluster.one, bearer(laptop["token"])) == 200
    sessions = httpx.get(
        f"{cluster.two.url}/api/v1/user/sessions", headers=bearer(phone["token"])
    ).json()["sessions"]
    laptop_id = next(s["id"] for s in sessions if not s["current"])
    revoked = httpx.delete(
        f"{cluster.two.url}/api/v1/user/sessions/{laptop_id}", headers=bearer(phone["token"])
    )
    assert revoked.status_code == 200
    assert me(cluster.one, bearer(laptop["token"])) == 401
    assert me(cluster.one, bearer(phone["token"])) == 200
    # A key deleted through process two stops working on the ingest process at once.
    keys = httpx.get(f"{cluster.two.url}/api/v1/keys", headers=bearer(phone["token"])).json()
    key_id = keys["keys"][0]["id"]
    deleted = httpx.delete(
        f"{cluster.two.url}/api/v1/keys/{key_id}", headers=bearer(phone["token"])
    )
    assert deleted.status_code == 200
    assert beat(cluster.ingest, user.key_header) == 401
    # A read-only key made through process one is refused writes by the ingest process.
    made = httpx.post(
        f"{cluster.one.url}/api/v1/keys", headers=bearer(phone["token"]), json={"read_only": True}
    ).json()["key"]
    assert beat(cluster.ingest, {"X-API-Key": made["key"]}) == 403
    assert me(cluster.two, {"X-API-Key": made["key"]}) == 200


def test_refresh_token_reuse_across_processes_revokes_the_session(cluster: Cluster) -> None:
    created = httpx.post(f"{cluster.one.url}/auth/anonymous/create", json={}).json()
    rotated = httpx.post(
        f"{cluster.two.url}/auth/refresh", json={"refresh_token": created["refresh_token"]}
    )
    assert rotated.status_code == 200
    reused = httpx.post(
        f"{cluster.one.url}/auth/refresh", json={"refresh_token": created["refresh_token"]}
    )
    assert reused.status_code == 401
    assert me(cluster.two, bearer(rotated.json()["token"])) == 401


def test_one_username_claimed_through_two_processes_has_one_owner(
    cluster: Cluster, tmp_path: Path
) -> None:
    users = [Client((cluster.one if i % 2 else cluster.two).url) for i in range(6)]
    name = f"contested-{tmp_path.name[-12:]}".replace("_", "-")

    def claim(pair: tuple[int, Client]) -> int:
        index, user = pair
        process = cluster.two if index % 2 else cluster.one  # the other process than creation
        return httpx.post(
            f"{process.url}/api/v1/user/profile/update",
            headers=user.bearer,
            json={"username": name},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(len(users)) as pool:
        statuses = list(pool.map(claim, enumerate(users)))
    assert sorted(statuses) == [200] + [409] * (len(users) - 1)
    for process in (cluster.one, cluster.two):
        names = [
            httpx.get(f"{process.url}/api/v1/user/me", headers=u.bearer).json()["username"]
            for u in users
        ]
        assert names.count(name) == 1
        assert names.index(name) == statuses.index(200)


def test_an_account_deleted_through_one_process_is_gone_in_every_process(
    cluster: Cluster,
) -> None:
    user = Client(cluster.one.url)
    other = Client(cluster.two.url)
    assert beat(cluster.ingest, user.key_header) == 200

    deleted = httpx.request(
        "DELETE",
        f"{cluster.one.url}/api/v1/user/me",
        headers=user.bearer,
        json={"confirm": user.username},
        timeout=30,
    )

    assert deleted.status_code == 202, deleted.text
    # The very next request anywhere: the token, the key and the account number are refused,
    # and the name is free.
    assert me(cluster.two, user.bearer) == 401
    assert me(cluster.two, user.key_header) == 401
    assert beat(cluster.ingest, user.key_header) == 401
    login = httpx.post(
        f"{cluster.two.url}/auth/anonymous/login", json={"account_number": user.account_number}
    )
    assert login.status_code == 401
    renamed = httpx.post(
        f"{cluster.two.url}/api/v1/user/profile/update",
        headers=other.bearer,
        json={"username": user.username},
    )
    assert renamed.status_code == 200, renamed.text
