"""Read-only SQL for analysts on ``codetrackr serve``: ClickHouse's HTTP interface at
``/clickhouse/``, reached with clickhouse-connect's own HTTP client and with plain HTTP, and what it
refuses: writes, DDL, table functions, system tables with secrets, settings, other accounts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import clickhouse_connect
import httpx
import pytest
import yaml
from clickhouse_connect.driver.client import Client as HttpClient
from clickhouse_connect.driver.exceptions import DatabaseError
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Client, CodeTrackrProcess, eventually, run_cli
from tests.e2e.test_durability_and_replay import COVER_S, aligned_start, spaced_heartbeats
from tests.support import grafana

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

ANALYST = "data-analyst"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    process = CodeTrackrProcess(
        "serve", tmp_path_factory.mktemp("sql") / "data", env={"CODETRACKR_ANALYSTS": ANALYST}
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def analyst_key(server: CodeTrackrProcess) -> str:
    user = Client(server.url).rename(ANALYST)
    created = user.http.post(
        "/api/v1/keys", headers=user.bearer, json={"name": "sql", "read_only": True}
    )
    key: str = created.json()["key"]["key"]
    return key


@pytest.fixture(scope="module")
def coder(server: CodeTrackrProcess) -> Client:
    user = Client(server.url)
    user.user_id = user.get("/api/v1/user/me")["id"]  # type: ignore[attr-defined]
    beats = spaced_heartbeats(aligned_start(3, "UTC"), 6, project="sql-test")
    assert user.http.post("/api/v1/heartbeats", json=beats, headers=user.key_header).is_success
    eventually(lambda: _equal(user.summary_total(range="all"), 6 * COVER_S), timeout_s=60)
    return user


def _equal(a: object, b: object) -> None:
    assert a == b


def post(server: CodeTrackrProcess, key: str, sql: str, **params: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/clickhouse/", content=sql, params=params, auth=(ANALYST, key), timeout=30
    )


def connect(server: CodeTrackrProcess, key: str) -> HttpClient:
    """clickhouse-connect's own HTTP client, as an analyst would configure it."""
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=server.port, username=ANALYST, password=key, proxy_path="/clickhouse"
    )


def test_clickhouse_connect_queries_the_views(
    server: CodeTrackrProcess, analyst_key: str, coder: Client
) -> None:
    client = connect(server, analyst_key)
    try:
        rows = client.query(
            "SELECT project, count() FROM heartbeats WHERE user_id = {u:String} GROUP BY project",
            parameters={"u": coder.user_id},
        ).result_rows
        assert rows == [("sql-test", 6)]
        (total,) = client.query(
            "SELECT sum(total_seconds) FROM daily WHERE user_id = {u:String}",
            parameters={"u": coder.user_id},
        ).result_rows[0]
        assert total == 6 * COVER_S
        tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
        assert {"heartbeats", "daily", "daily_breakdown", "weekly", "users"} <= tables
    finally:
        client.close()


def test_plain_http_with_formats(
    server: CodeTrackrProcess, analyst_key: str, coder: Client
) -> None:
    answer = post(
        server,
        analyst_key,
        "SELECT dimension, value, seconds FROM daily_breakdown"
        " WHERE user_id = {u:String} AND dimension = 'project'",
        default_format="JSON",
        param_u=coder.user_id,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == [
        {"dimension": "project", "value": "sql-test", "seconds": 6 * COVER_S}
    ]
    csv = post(server, analyst_key, "SELECT 1 AS one FORMAT CSVWithNames")
    assert csv.text == '"one"\n1\n'
    parquet = post(server, analyst_key, "SELECT number FROM system.numbers LIMIT 3 FORMAT Parquet")
    assert parquet.status_code == 200
    assert parquet.content[:4] == b"PAR1"


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("INSERT INTO codetrackr.heartbeats (user_id) VALUES ('x')", "497"),
        ("CREATE TABLE codetrackr_analytics.x (a Int8) ENGINE = Memory", "497"),
        ("DROP TABLE codetrackr.heartbeats", "497"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "497"),
        ("SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", "497"),
        ("SELECT * FROM system.users", "497"),
        ("SELECT * FROM system.query_log", "497"),
        ("SELECT 1 SETTINGS readonly = 0", "497"),
        ("SELECT 1; SELECT 2", "62"),
        ("SELEC 1", "62"),
    ],
)
def test_refusals(server: CodeTrackrProcess, analyst_key: str, sql: str, code: str) -> None:
    answer = post(server, analyst_key, sql)
    assert answer.status_code in (400, 403), answer.text
    assert answer.headers["X-ClickHouse-Exception-Code"] == code
    assert answer.text.startswith(f"Code: {code}. DB::Exception: ")


def test_settings_in_the_url_do_not_lift_the_limits(
    server: CodeTrackrProcess, analyst_key: str
) -> None:
    answer = post(
        server,
        analyst_key,
        "SELECT number FROM system.numbers LIMIT 2000000",
        readonly="0",
        max_result_rows="0",
    )
    assert answer.status_code == 400
    assert "TOO_MANY_ROWS_OR_BYTES" in answer.text


def test_only_analysts_and_admins_with_their_own_keys(
    server: CodeTrackrProcess, analyst_key: str, coder: Client
) -> None:
    wrong = httpx.post(
        f"{server.url}/clickhouse/", content="SELECT 1", auth=(ANALYST, "ct_wrong"), timeout=30
    )
    assert wrong.status_code == 401
    assert wrong.headers["X-ClickHouse-Exception-Code"] == "516"
    not_analyst = httpx.post(
        f"{server.url}/clickhouse/",
        content="SELECT 1",
        auth=(coder.username, coder.api_key),
        timeout=30,
    )
    assert not_analyst.status_code == 403
    assert not_analyst.headers["X-ClickHouse-Exception-Code"] == "497"
    borrowed = httpx.post(
        f"{server.url}/clickhouse/", content="SELECT 1", auth=(coder.username, analyst_key)
    )
    assert borrowed.status_code == 401
    assert httpx.get(f"{server.url}/clickhouse/ping").text == "Ok.\n"


def test_codetrackr_sql_prints_a_table_and_csv(
    server: CodeTrackrProcess, analyst_key: str, coder: Client
) -> None:
    env = {"CODETRACKR_SQL_KEY": analyst_key, "CODETRACKR_SQL_URL": server.url}
    query = (
        "SELECT project, count() AS n FROM heartbeats"
        f" WHERE user_id = '{coder.user_id}' GROUP BY project"  # type: ignore[attr-defined]
    )
    table = run_cli(["sql", query], env=env)
    header, row = [line for line in table.splitlines() if "project" in line or "sql-test" in line]
    # ClickHouse's own pretty table: ┌─project──┬─n─┐ then │ sql-test │ 6 │
    assert re.findall(r"[\w-]+", header) == ["project", "n"]
    assert re.findall(r"[\w-]+", row)[-2:] == ["sql-test", "6"]  # after the row number
    csv = run_cli(["sql", "--format", "csv", query], env=env)
    assert csv.splitlines() == ['"project","n"', '"sql-test",6']
    with pytest.raises(RuntimeError, match="497"):
        run_cli(["sql", "DROP TABLE codetrackr.heartbeats"], env=env)


def test_a_client_error_is_a_database_error(server: CodeTrackrProcess, analyst_key: str) -> None:
    client = connect(server, analyst_key)
    try:
        with pytest.raises(DatabaseError, match="not open to analysts"):
            client.query("SELECT * FROM system.users")
    finally:
        client.close()


# ---- Grafana's dashboards (deploy/grafana), against this server ------------------------------


@pytest.fixture(scope="module")
def board_member(server: CodeTrackrProcess) -> Client:
    """A ranked user coding this week (a language Other included), so that every dashboard
    panel of the last 30 days has something to show."""
    user = Client(server.url, timezone="UTC")
    opted = user.http.post(
        "/api/v1/user/profile/update",
        headers=user.bearer,
        json={"is_public": True, "show_in_leaderboard": True, "country": "DE"},
    )
    assert opted.status_code == 200, opted.text
    now = datetime.now(UTC)
    monday = datetime.combine(now.date() - timedelta(days=now.weekday()), time.min, tzinfo=UTC)
    first = max(monday.timestamp() + 1, now.timestamp() - 900)
    beats = [
        {
            "entity": f"/src/board{i}.{'go' if i % 3 else 'zorb'}",
            "type": "file",
            "time": first + 120 * i,
            "project": "boards",
            "branch": "main",
            "language": "golang" if i % 3 else "Zorblang",
            "category": "coding",
        }
        for i in range(6)
    ]
    headers = {**user.key_header, "User-Agent": "wakatime/v1.90.0 (linux) go1.22 vscode/1.90.0"}
    sent = user.http.post("/api/v1/users/current/heartbeats.bulk", json=beats, headers=headers)
    assert sent.status_code == 201, sent.text
    eventually(lambda: _positive(user.summary_total(range="7d")), timeout_s=60)
    return user


def _positive(value: int) -> None:
    assert value > 0


def _panel_ids() -> list[str]:
    return [t.label for t in grafana.targets(grafana.CLICKHOUSE_TYPE)]


@pytest.mark.parametrize("label", _panel_ids())
def test_every_clickhouse_panel_runs_and_returns_rows(
    server: CodeTrackrProcess, analyst_key: str, coder: Client, board_member: Client, label: str
) -> None:
    """Each ClickHouse panel's SQL, its macros expanded as the data source does for the last 30
    days, runs as the analyst against this server's /clickhouse/ (where Grafana's data source can
    point on `make run`) and finds the users' rows."""
    (target,) = [t for t in grafana.targets(grafana.CLICKHOUSE_TYPE) if t.label == label]
    end = datetime.now(UTC) + timedelta(minutes=1)
    sql = grafana.expand(target.body["rawSql"], end - timedelta(days=30), end, interval_s=60)
    client = connect(server, analyst_key)
    try:
        result = client.query(sql)
    finally:
        client.close()
    assert result.result_rows, f"{label} returned no rows:\n{sql}"
    if target.body["format"] == 0:  # a time series: a time column first, then numbers
        assert isinstance(result.result_rows[0][0], datetime), result.result_rows[0]


def test_every_prometheus_panel_reads_metrics_the_server_exposes(
    server: CodeTrackrProcess, coder: Client
) -> None:
    """PromQL is not SQL: each expression's metric names must be samples of families this
    server's /metrics declares, and its ``by (...)`` labels those families' labels."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    samples: dict[str, set[str]] = {}  # sample name -> its label names
    for family in text_string_to_metric_families(text):
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"),
        }.get(family.type, ("",))
        labels = {name for sample in family.samples for name in sample.labels}
        for suffix in suffixes:
            samples.setdefault(family.name + suffix, set()).update(labels)
    checked = 0
    for target in grafana.targets(grafana.PROMETHEUS_TYPE):
        expr = target.body["expr"]
        names = grafana.PROMQL_METRIC.findall(expr)
        assert names, f"{target.label}: no CodeTrackr metric in {expr}"
        for name in names:
            assert name in samples, f"{target.label}: {name} is not exposed"
            checked += 1
            known = samples[name] | {"le"}
            if samples[name]:  # labels are only seen on samples
                for group in grafana.PROMQL_BY.findall(expr):
                    for label in _args(group):
                        assert label in known, f"{target.label}: no label {label} on {name}"
    assert checked >= 10


def _args(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def test_dashboards_use_the_provisioned_data_sources() -> None:
    provisioned = yaml.safe_load(
        (grafana.PROVISIONING / "datasources" / "codetrackr.yaml").read_text()
    )["datasources"]
    by_uid = {source["uid"]: source["type"] for source in provisioned}
    assert set(by_uid.values()) == {grafana.CLICKHOUSE_TYPE, grafana.PROMETHEUS_TYPE}
    boards = grafana.dashboards()
    assert set(boards) == {"activity", "languages", "projects", "boards", "ingest"}
    assert len({board["uid"] for board in boards.values()}) == len(boards)
    for name, board in boards.items():
        for panel in board["panels"]:
            for target in panel["targets"]:
                source = target.get("datasource") or panel["datasource"]
                assert by_uid.get(source["uid"]) == source["type"], f"{name}: {panel['title']}"
