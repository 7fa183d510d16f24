"""The distributed deployment for ``--mode distributed``: every part its own process.

A Kafka-protocol broker (Tansu by default, or noida-db), ClickHouse's HTTP interface (the chdb
HTTP stand-in of ``tests.support.chdb_http``, the real ClickHouse engine behind a small HTTP
server), and CodeTrackr's ``ingest``, ``api`` and two ``worker`` processes, configured as
``docker-compose.yml`` configures them (6 heartbeat partitions, the default worker batch size; no
Redis, which nothing on these paths uses), started with the same helpers as the end-to-end tests
(``tests/e2e/topology.py``). Leaving the context manager stops the workers, ingest, api, the
ClickHouse stand-in and the broker, in that order.

Why Tansu by default: every idle aiokafka consumer polls noida-db in a busy loop (it answers
empty fetches at once instead of holding them, see ``docs/benchmarks.md``), and this topology has
four long-lived consumers (two workers, two account directories): about one core of a two-core
machine gone before any load. On Tansu the idle topology uses ~1% of a core per process.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from types import TracebackType
from typing import Literal

from bench.deploy import NO_RATE_LIMITS, RAW_KAFKA_TOPIC, Mode, children_named
from eventlog.kafka import KafkaEventLog
from eventlog.port import EventLog
from tests.brokers import Broker, NoidaBroker, TansuBroker
from tests.e2e.harness import CodeTrackrProcess
from tests.e2e.topology import wait_group_stable
from tests.support.chdb_http import ChdbHttpProcess

BrokerKind = Literal["tansu", "noida"]
BROKERS: tuple[BrokerKind, ...] = ("tansu", "noida")
BROKER_LABELS: dict[BrokerKind, str] = {
    "tansu": "Tansu 0.6 (memory storage)",
    "noida": "noida-db 0.2 (data on disk)",
}
# The binary's name in its command line, to find its pid among this process's children.
_BROKER_COMMAND: dict[BrokerKind, str] = {"tansu": "tansu", "noida": "noida-db"}
WORKERS = 2
PARTITIONS = 6  # docker-compose.yml's CODETRACKR_HEARTBEAT_PARTITIONS
START_TIMEOUT_S = 120.0


class DistributedDeployment:
    """Broker, ClickHouse stand-in, ``api``, ``ingest`` and :data:`WORKERS` workers."""

    heartbeat_partitions = PARTITIONS

    def __init__(self, work_dir: Path, broker: BrokerKind = "tansu") -> None:
        self.work_dir = work_dir
        self.broker_kind: BrokerKind = broker
        self.broker: Broker | None = None
        self.clickhouse: ChdbHttpProcess | None = None
        self.api: CodeTrackrProcess | None = None
        self.ingest: CodeTrackrProcess | None = None
        self.workers: list[CodeTrackrProcess] = []
        self._jwt_secret = secrets.token_urlsafe(48)
        self._stack = contextlib.ExitStack()

    @property
    def mode(self) -> Mode:
        return "distributed"

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> DistributedDeployment:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        kind = TansuBroker if self.broker_kind == "tansu" else NoidaBroker
        broker = kind(work_dir=self.work_dir / "broker")
        self._stack.callback(broker.close)
        broker.start(timeout_s=60)
        self.broker = broker
        clickhouse = ChdbHttpProcess(self.work_dir / "clickhouse", startup_timeout_s=60)
        self._stack.callback(clickhouse.stop)
        clickhouse.start()
        self.clickhouse = clickhouse
        # Each stop is registered before its start, so a process that fails to come up is
        # stopped too.
        self.api = self._service("api")
        self.ingest = self._service("ingest")
        for index in range(WORKERS):
            self.workers.append(self._service("worker", f"worker{index}"))
        wait_group_stable(broker.bootstrap, members=WORKERS, timeout_s=START_TIMEOUT_S)

    def _service(self, command: str, name: str | None = None) -> CodeTrackrProcess:
        process = CodeTrackrProcess(command, self.work_dir / (name or command), env=self.env())
        self._stack.callback(process.stop)
        process.start(timeout_s=START_TIMEOUT_S)
        return process

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    # -- configuration ------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap

    @property
    def clickhouse_url(self) -> str:
        assert self.clickhouse is not None
        return self.clickhouse.url

    def env(self, database: str = "codetrackr") -> dict[str, str]:
        """The services' settings (those of ``docker-compose.yml``, on this machine's ports)."""
        return {
            "CODETRACKR_EVENT_LOG_URL": f"kafka://{self.bootstrap}",
            "CODETRACKR_CLICKHOUSE_URL": self.clickhouse_url,
            "CODETRACKR_CLICKHOUSE_DATABASE": database,
            "CODETRACKR_JWT_SECRET": self._jwt_secret,
            "CODETRACKR_HEARTBEAT_PARTITIONS": str(PARTITIONS),
            # As in the other modes: per-request access logs would be measured too.
            "CODETRACKR_LOG_LEVEL": "warning",
            **NO_RATE_LIMITS,
        }

    @property
    def broker_label(self) -> str:
        return BROKER_LABELS[self.broker_kind]

    # -- the System protocol --------------------------------------------------------------------

    @property
    def ingest_url(self) -> str:
        assert self.ingest is not None
        return self.ingest.url

    @property
    def api_url(self) -> str:
        assert self.api is not None
        return self.api.url

    @property
    def append_label(self) -> str:
        return f"KafkaEventLog.append on {self.broker_kind}"

    def _processes(self) -> dict[str, CodeTrackrProcess]:
        named = {"ingest": self.ingest, "api": self.api}
        named.update({f"worker{i}": worker for i, worker in enumerate(self.workers)})
        return {name: process for name, process in named.items() if process is not None}

    def cpu_pids(self) -> dict[str, list[int]]:
        def pid(process: CodeTrackrProcess) -> list[int]:
            return [process.proc.pid] if process.proc is not None else []

        pids = {"ingest": pid(self.ingest) if self.ingest else []}
        pids["api"] = pid(self.api) if self.api else []
        pids["workers"] = [p for worker in self.workers for p in pid(worker)]
        pids["clickhouse"] = [self.clickhouse.pid] if self.clickhouse is not None else []
        pids["broker"] = children_named(_BROKER_COMMAND[self.broker_kind])
        return pids

    def dead(self) -> list[str]:
        dead = [
            name
            for name, process in self._processes().items()
            if process.proc is None or process.proc.poll() is not None
        ]
        if self.clickhouse is None or not self.clickhouse.running:
            dead.append("clickhouse")
        if self.broker is None or not self.broker.running:
            dead.append("broker")
        return dead

    def logs(self) -> str:
        dead = set(self.dead())
        processes = self._processes()
        shown = [name for name in processes if name in dead] or list(processes)
        return "\n".join(f"--- {name}:\n{processes[name].logs()}" for name in shown)

    def raw_log(self) -> tuple[EventLog, str]:
        """A ``KafkaEventLog`` on the same broker, on a topic of its own (no worker reads it)."""
        return KafkaEventLog(self.bootstrap, client_id="bench-raw"), RAW_KAFKA_TOPIC
