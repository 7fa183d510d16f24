"""Plugin hooks in the distributed mode: two ``codetrackr worker`` processes run the hook processor
beside their faust agents, as one consumer group of their own, on Kafka with the key-value store
in Redis.

The plugin is published and installed by appending the store's events to the accounts topic, as
the store's routes do (the topology's accounts are anonymous, and publishing needs a linked
account by default); heartbeats go through the ingest process.

Run on Tansu: on the noida broker, a member's offset commit that arrives while the group
rebalances (here: the second worker joining) leaves the group stuck, the first member's fetches
blocking and the second one's join timing out again and again. Two bare event-log readers show it
too, without the hook processor; Tansu does not.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from eventlog.factory import open_event_log
from eventlog.port import Record
from schemas.events import ACCOUNTS_TOPIC, PluginInstalled, PluginPublished, encode_event
from tests.e2e.harness import Client, eventually
from tests.e2e.topology import distributed

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.clickhouse,
    pytest.mark.redis,
    pytest.mark.quickjs,
    pytest.mark.slow,
]

TALLY = """
async function on_install(ctx) { await ctx.redis.incr('installs'); }
async function on_heartbeat(ctx, hb) {
  await ctx.redis.incr('calls');
  await ctx.redis.set('seen:' + hb.id, hb.project);
}
"""


def append_store_events(bootstrap: str, user_id: str, tmp: Path) -> None:
    async def append() -> None:
        log = open_event_log(f"kafka://{bootstrap}", tmp)
        await log.start()
        try:
            now = time.time()
            events = [
                PluginPublished(
                    event_id=uuid.uuid4().hex,
                    user_id=user_id,
                    occurred_at=now,
                    name="tally",
                    display_name="Tally",
                    server_script=TALLY,
                ),
                PluginInstalled(
                    event_id=uuid.uuid4().hex, user_id=user_id, occurred_at=now, name="tally"
                ),
            ]
            await log.append(
                [Record(ACCOUNTS_TOPIC, user_id.encode(), encode_event(e)) for e in events]
            )
        finally:
            await log.close()

    asyncio.run(append())


def test_workers_fire_each_hook_of_a_distributed_deployment(tmp_path: Path) -> None:
    with distributed(tmp_path, workers=2, partitions=4, broker_kind="tansu") as topology:
        user = Client(topology.api_url)
        user_id = str(user.get("/api/v1/user/me")["id"])
        append_store_events(topology.broker.bootstrap, user_id, tmp_path)
        kv = redis.Redis.from_url(topology.redis.url, decode_responses=True)
        prefix = f"plugin:tally:{user_id}:"
        # Generous: two members joining a new group at once can take a minute of rebalances.
        eventually(lambda: _equal(kv.get(prefix + "installs"), "1"), timeout_s=180)
        now = time.time()
        sent = 0
        for request in range(4):
            beats = [
                {"project": f"p{request}", "file": f"f{i}.py", "time": now - 600 + request * 20 + i}
                for i in range(20)
            ]
            response = user.http.post(
                f"{topology.ingest_url}/api/v1/heartbeats", json=beats, headers=user.key_header
            )
            assert response.status_code == 200, response.text
            sent += len(beats)

        def all_seen() -> None:
            assert len(list(kv.scan_iter(prefix + "seen:*"))) == sent

        eventually(all_seen, timeout_s=180)
        assert int(kv.get(prefix + "calls") or 0) >= sent
        assert kv.get(prefix + "installs") == "1"  # two workers, one on_install
        for worker in topology.workers:  # each worker reports its hook processor
            ready = httpx.get(f"{worker.url}/readyz", timeout=10).json()
            checks = ready.get("checks") or ready["error"]["details"]["checks"]
            names = [p["name"] for p in checks["projector"]["projectors"]]
            assert "plugin-hooks" in names, ready


def _equal(actual: object, expected: object) -> None:
    assert actual == expected, actual


def test_a_hooks_only_worker_fires_hooks_beside_a_projections_only_worker(tmp_path: Path) -> None:
    """``worker --role hooks`` runs the hook processor alone, ``--role projections`` the agents
    alone: hooks fire once each, projections are written, and each reports only its own part."""
    with distributed(
        tmp_path, workers=0, partitions=2, broker_kind="tansu", roles=("projections", "hooks")
    ) as topology:
        projections, hooks = topology.workers
        user = Client(topology.api_url)
        user_id = str(user.get("/api/v1/user/me")["id"])
        append_store_events(topology.broker.bootstrap, user_id, tmp_path)
        kv = redis.Redis.from_url(topology.redis.url, decode_responses=True)
        prefix = f"plugin:tally:{user_id}:"
        eventually(lambda: _equal(kv.get(prefix + "installs"), "1"), timeout_s=180)
        now = time.time()
        beats = [{"project": "solo", "file": f"f{i}.py", "time": now - 300 + i} for i in range(30)]
        response = user.http.post(
            f"{topology.ingest_url}/api/v1/heartbeats", json=beats, headers=user.key_header
        )
        assert response.status_code == 200, response.text

        def all_seen() -> None:
            assert len(list(kv.scan_iter(prefix + "seen:*"))) == len(beats)

        eventually(all_seen, timeout_s=180)

        def projected() -> None:
            projects = user.get("/api/v1/stats/projects", range="all")["projects"]
            assert [p["project"] for p in projects] == ["solo"], projects

        eventually(projected, timeout_s=120)

        def names(worker_url: str) -> list[str]:
            ready = httpx.get(f"{worker_url}/readyz", timeout=10).json()
            checks = ready.get("checks") or ready["error"]["details"]["checks"]
            return sorted(p["name"] for p in checks["projector"]["projectors"])

        assert names(hooks.url) == ["plugin-hooks"]
        assert "plugin-hooks" not in names(projections.url)
        assert names(projections.url), "the projections worker reports its agents"
