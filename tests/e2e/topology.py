"""The distributed deployment, on one machine: every part a real process.

A Kafka-protocol broker (noida or Tansu), ClickHouse reached over its HTTP interface (the chdb
HTTP stand-in from ``tests.support.chdb_http``, running the real ClickHouse engine), a
``redis-server`` for live push (``tests.support.redis_server``), and CodeTrackr's ``api``,
``ingest`` and N ``worker`` processes configured as ``docker-compose.yml`` configures them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from processors.runner import PROJECTIONS_GROUP
from schemas.events import HEARTBEATS_TOPIC
from tests.brokers import Broker, NoidaBroker, TansuBroker
from tests.e2e.harness import CodeTrackrProcess, eventually
from tests.support.chdb_http import ChdbHttpProcess
from tests.support.redis_server import RedisServer, redis_server_binary

JWT_SECRET = "distributed-test-secret-" + "z" * 40


@dataclass
class Topology:
    root: Path
    broker_kind: str
    broker: Broker
    clickhouse: ChdbHttpProcess
    redis: RedisServer
    partitions: int
    api: CodeTrackrProcess | None = None
    ingest: CodeTrackrProcess | None = None
    workers: list[CodeTrackrProcess] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "CODETRACKR_EVENT_LOG_URL": f"kafka://{self.broker.bootstrap}",
            "CODETRACKR_CLICKHOUSE_URL": self.clickhouse.url,
            "CODETRACKR_REDIS_URL": self.redis.url,
            "CODETRACKR_JWT_SECRET": JWT_SECRET,
            "CODETRACKR_HEARTBEAT_PARTITIONS": str(self.partitions),
            "CODETRACKR_WORKER_BATCH_SIZE": "50",
            "CODETRACKR_LOG_LEVEL": "info",
        }

    def start_worker(self, role: str = "all") -> CodeTrackrProcess:
        index = len(self.workers)
        worker = CodeTrackrProcess(
            "worker", self.root / f"worker{index}", env=self.env, args=["--role", role]
        ).start()
        self.workers.append(worker)
        return worker

    @property
    def api_url(self) -> str:
        assert self.api is not None
        return self.api.url

    @property
    def ingest_url(self) -> str:
        assert self.ingest is not None
        return self.ingest.url

    def stop(self) -> None:
        for proc in [*self.workers, self.ingest, self.api]:
            if proc is not None:
                proc.stop()


async def _describe_group(bootstrap: str) -> tuple[str, list[set[int]]]:
    """The workers' group state and, per member, the heartbeat partitions it owns."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([PROJECTIONS_GROUP])
    finally:
        await admin.close()
    _, _, state, _, _, members = described[0].groups[0]
    owned = []
    for member in members:
        raw = member[4]
        assignment = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
        partitions = assignment.partitions() if assignment is not None else []
        owned.append({tp.partition for tp in partitions if tp.topic == HEARTBEATS_TOPIC})
    return state, owned


def group_assignment(bootstrap: str) -> tuple[str, list[set[int]]]:
    return asyncio.run(_describe_group(bootstrap))


# One "Setting newly assigned partitions <table> for group <id>" log entry.
_ASSIGNMENT = re.compile(r"Setting newly assigned partitions(.*?)for group (\S+)", re.DOTALL)
_ASSIGNED = re.compile(r"\| " + re.escape(HEARTBEATS_TOPIC) + r" +\| \{([0-9, \-]*)\}")


def worker_partitions(worker: CodeTrackrProcess) -> set[int]:
    """The heartbeat partitions a worker says (in its log) it was last assigned in the
    projections group.

    Read from the worker itself because not every broker reports assignments in DescribeGroups
    (Tansu leaves them empty). A worker logs assignments of other groups too (its account
    directory's, the plugin hook processor's): only the projections group's count.
    """
    text = worker.log_path.read_text(errors="replace")
    blocks = [
        block.group(1)
        for block in _ASSIGNMENT.finditer(text)
        if block.group(2) == PROJECTIONS_GROUP
    ]
    if not blocks:
        return set()
    match = _ASSIGNED.search(blocks[-1])
    if match is None:
        return set()
    partitions: set[int] = set()
    for item in match.group(1).replace(" ", "").split(","):  # faust writes "{0, 2}" or "{0-5}"
        if item:
            low, _, high = item.partition("-")
            partitions.update(range(int(low), int(high or low) + 1))
    return partitions


def wait_group_stable(bootstrap: str, *, members: int, timeout_s: float = 120.0) -> None:
    """Block until the workers' group is Stable with ``members`` members.

    Tests start from a settled group; rebalances they provoke on purpose (a worker stopped or
    killed) are then the only ones, and their timing is what the test measures.
    """

    def stable() -> None:
        state, owned = group_assignment(bootstrap)
        assert (state, len(owned)) == ("Stable", members), (state, owned)

    eventually(stable, timeout_s=timeout_s, interval_s=0.5)


@contextmanager
def distributed(
    root: Path,
    *,
    workers: int = 2,
    partitions: int = 6,
    broker_kind: str = "noida",
    roles: Sequence[str] = (),
) -> Iterator[Topology]:
    """``workers`` workers of role ``all``, then one of each of ``roles``."""
    kind = NoidaBroker if broker_kind == "noida" else TansuBroker
    broker = kind(work_dir=root / "broker")
    clickhouse = ChdbHttpProcess(root / "clickhouse")
    redis = RedisServer(redis_server_binary())  # skips the test when redis-server is missing
    topology = Topology(root, broker_kind, broker, clickhouse, redis, partitions)
    try:
        broker.start()
        clickhouse.start()
        redis.start()
        topology.api = CodeTrackrProcess("api", root / "api", env=topology.env).start()
        topology.ingest = CodeTrackrProcess("ingest", root / "ingest", env=topology.env).start()
        for _ in range(workers):
            topology.start_worker()
        for role in roles:
            topology.start_worker(role)
        wait_group_stable(
            broker.bootstrap, members=workers + sum(role != "hooks" for role in roles)
        )
        yield topology
    finally:
        topology.stop()
        redis.close()
        clickhouse.stop()
        broker.close()
