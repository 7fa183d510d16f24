"""``/metrics`` of ``codetrackr serve`` over a socket, read with prometheus_client's own parser:
what ingest accepted and refused, requests by route template, the projectors' lag and batches,
plugin executions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Client, CodeTrackrProcess, eventually
from tests.e2e.test_durability_and_replay import aligned_start, spaced_heartbeats

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    process = CodeTrackrProcess("serve", tmp_path_factory.mktemp("metrics") / "data").start()
    yield process
    process.stop()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, keyed by name and sorted labels."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_ingest_requests_and_projectors_are_counted(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    before = scrape(server.url)
    beats = spaced_heartbeats(aligned_start(2, "UTC"), 7)
    response = user.http.post("/api/v1/heartbeats", json=beats, headers=user.key_header)
    assert response.status_code == 200
    refused = user.http.post(
        "/api/v1/heartbeats", json=[{"time": "not a time"}], headers=user.key_header
    )
    assert refused.status_code == 400
    code = refused.json()["error"]["code"]
    assert user.http.get("/no/such/path").status_code == 404
    eventually(lambda: _projected(user, 7 * 30), timeout_s=60)
    # The hook processor runs in a child process of serve, which reports to it once it runs.
    eventually(lambda: _hooks_counted(server.url), timeout_s=60)

    after = scrape(server.url)
    accepted = "codetrackr_heartbeats_accepted_total"
    assert value(after, accepted) - value(before, accepted) == 7
    rejected = "codetrackr_ingest_rejected_requests_total"
    assert value(after, rejected, reason=code) - value(before, rejected, reason=code) == 1
    requests = "codetrackr_http_requests_total"
    route = {"method": "POST", "route": "/api/v1/heartbeats"}
    assert value(after, requests, **route, status="200") >= 1
    assert value(after, requests, **route, status="400") >= 1
    # A stray path is one label value, never its own series.
    assert value(after, requests, method="GET", route="unmatched", status="404") >= 1
    assert not any("/no/such/path" in dict(labels).get("route", "") for _, labels in after)
    assert value(after, "codetrackr_log_append_duration_seconds_count") >= 1

    for projector in ("projection-runner", "plugin-hooks"):
        assert value(after, "codetrackr_projector_alive", projector=projector) == 1
        assert value(after, "codetrackr_projector_batch_records_count", projector=projector) >= 1
        lags = [
            labels
            for name, labels in after
            if name == "codetrackr_projector_lag_records" and ("projector", projector) in labels
        ]
        assert any(
            dict(labels)["partition"].startswith("codetrackr.heartbeats/") for labels in lags
        )
    # Projected everything it fetched: no heartbeat is behind any more.
    runner = ("projector", "projection-runner")
    lag = "codetrackr_projector_lag_records"
    assert sum(v for (name, labels), v in after.items() if name == lag and runner in labels) == 0


def _hooks_counted(url: str) -> None:
    samples = scrape(url)
    hooks = {"projector": "plugin-hooks"}
    assert value(samples, "codetrackr_projector_alive", **hooks) == 1
    assert value(samples, "codetrackr_projector_batch_records_count", **hooks) >= 1


def _projected(user: Client, expected: int) -> None:
    assert user.summary_total(range="all") == expected


def test_no_sandbox_process_runs_while_no_plugin_is_installed(server: CodeTrackrProcess) -> None:
    """Sandbox processes (~25 MB each) start with the first installed plugin, not with serve."""
    assert server.proc is not None
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[1]) == server.proc.pid:
            children.append(cmdline.decode(errors="replace"))
    assert not [c for c in children if "plugins_runtime.sandbox_worker" in c], children
