"""DetectK-format files, one per feature DetectK's published examples use, `dtk run` against
real servers (issue 14): ClickHouse with the native port and `execution_time`, a `backtest:`
block, bucketed queries with context columns and seasonal features, several detectors with
ids, threshold ranges and percentages, `missing_data`'s staleness, a connection profile for
the collector and the storage, DetectK's rich message template (metadata, `inf`, `strftime`),
an HTTP JSON collector with a bracketed `value_path`, and `type: sql` with a connection string.

The files are written as a DetectK user writes them; only hosts and ports come from the
environment (`${VAR}`), as in DetectK's own examples."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.clickhouse_server import ClickHouseServer
from tests.support.databases import pg_database
from tests.support.files import write
from tests.support.http import Receiver, http_server
from tests.support.process import cli

NOW = int(time.time())
TEN = 600
LAST = NOW // TEN * TEN - TEN  # the newest complete 10-minute period

CH = """\
collector:
  type: "clickhouse"
  params:
    host: "${CLICKHOUSE_HOST:-localhost}"
    port: ${CLICKHOUSE_PORT}
    database: "dtk_analytics"
"""

FILES = {
    "backtest.yaml": """\
name: "sessions_backtest"
description: "execution_time and a backtest block"
"""
    + CH
    + """\
    query: |
      SELECT count() as value
      FROM sessions
      WHERE timestamp >= toDateTime('{{ execution_time }}') - INTERVAL 10 MINUTE
        AND timestamp < toDateTime('{{ execution_time }}')
detector:
  type: "mad"
  params: {window_size: "30 days", n_sigma: 3.0, use_weighted: true}
alerter:
  type: "mattermost"
  params: {webhook_url: "${MATTERMOST_WEBHOOK}", cooldown_minutes: 60}
backtest:
  enabled: true
  data_load_start: "2024-01-01 00:00:00"
  step_interval: "10 minutes"
""",
    "seasonal_rich.yaml": """\
name: "sessions_seasonal"
description: "bucketed query, context columns, seasonality, DetectK's rich template"
tags: ["critical", "sessions"]
metadata: {team: "analytics", priority: "P1"}
"""
    + CH
    + """\
    query: |
      SELECT toDateTime(intDiv(toUInt32(timestamp), 600) * 600) AS period_time, count() AS value,
             toHour(period_time) AS hour_of_day, toDayOfWeek(period_time) AS day_of_week
      FROM sessions
      WHERE timestamp >= toDateTime('{{ period_start }}') AND timestamp < toDateTime('{{ period_finish }}')
      GROUP BY period_time ORDER BY period_time
    timestamp_column: "period_time"
    value_column: "value"
    context_columns: ["hour_of_day", "day_of_week"]
storage:
  enabled: true
  type: "clickhouse"
  params:
    host: "${CLICKHOUSE_HOST:-localhost}"
    port: ${CLICKHOUSE_PORT}
    database: "dtk_metrics"
    save_detections: true
    datapoints_retention_days: 90
detector:
  type: "mad"
  params:
    window_size: "2 days"
    n_sigma: 3.0
    use_weighted: true
    exp_decay_factor: 0.1
    seasonal_features: ["hour_of_day"]
    use_combined_seasonality: false
alerter:
  enabled: true
  type: "mattermost"
  params:
    webhook_url: "${MATTERMOST_WEBHOOK}"
    username: "DetectK Bot"
    cooldown_minutes: 60
    message_template: |
      🚨 **ANOMALY DETECTED** `{{ metric_name }}`
      📊 **Value:** {{ value | round(2) }}{% if direction %} ({{ direction }}){% endif %}
      {% if lower_bound and upper_bound %}📈 **Expected range:** {{ lower_bound | round(2) }} - {{ upper_bound | round(2) }}{% endif %}
      {% if score %}{% if score == inf %}📉 **Score:** ∞{% else %}📉 **Score:** {{ score | round(2) }}{% endif %}{% endif %}
      {% if percent_deviation %}⚠️ **Deviation:** {{ percent_deviation | round(1) }}%{% endif %}
      🕒 **Time:** {{ timestamp.strftime('%Y-%m-%d %H:%M:%S') }}
      {% if metadata.detector %}🔍 **Detector:** {{ metadata.detector }}, window: {{ metadata.window_size }}, threshold: {{ metadata.n_sigma }} sigma{% endif %}
  conditions:
    direction: "both"
    consecutive_anomalies: 1
schedule:
  interval: "10 minutes"
""",
    "multi_threshold.yaml": """\
name: "sessions_multi_threshold"
"""
    + CH
    + """\
    query: |
      SELECT count() as value
      FROM sessions
      WHERE timestamp >= toDateTime('{{ period_start }}') AND timestamp < toDateTime('{{ period_finish }}')
detectors:
  - {id: "threshold_high", type: "threshold", params: {threshold: 1500, operator: "greater_than"}}
  - {id: "percent_20", type: "threshold", params: {threshold: 20.0, operator: "greater_than", percent: true, baseline: 60}}
  - {id: "range", type: "threshold", params: {threshold: 50, upper_threshold: 70, operator: "outside"}}
alerter:
  type: "slack"
  params: {webhook_url: "${SLACK_WEBHOOK}", icon_emoji: ":warning:"}
""",
    "heartbeat.yaml": """\
name: "etl_job_heartbeat"
"""
    + CH
    + """\
    query: |
      SELECT count() as value, max(created_at) as last_event_time
      FROM etl_processed_data
      WHERE created_at >= now() - INTERVAL 10 MINUTE
detector:
  type: "missing_data"
  params: {consecutive_missing: 1, max_staleness_minutes: 15, treat_zero_as_missing: true}
alerter:
  type: "slack"
  params: {webhook_url: "${SLACK_WEBHOOK}", cooldown_minutes: 30}
""",
    "with_profile.yaml": """\
name: "sessions_with_profile"
collector:
  profile: "clickhouse_analytics"
  params:
    query: |
      SELECT count() as value FROM sessions WHERE timestamp >= now() - INTERVAL 10 MINUTE
detector:
  type: "zscore"
  params: {window_size: "7 days", n_sigma: 3.0}
alerter:
  type: "mattermost"
  params: {webhook_url: "${MATTERMOST_WEBHOOK}"}
storage:
  enabled: true
  profile: "clickhouse_analytics"
""",
    "http_json.yaml": """\
name: "api_request_count"
collector:
  type: "http"
  params:
    url: "${API_URL}/v1/analytics/metrics"
    method: "GET"
    headers: {X-API-Key: "${MY_API_KEY}", Accept: "application/json"}
    params: {metric_name: "api_requests", time_range: "5m"}
    response_format: "json"
    value_path: "data.result[0].value[1]"  # Prometheus's answer, DetectK's bracket form
    timeout: 30
    retry_count: 2
detector:
  type: "threshold"
  params: {operator: "less_than", threshold: 1}
alerter:
  type: "slack"
  params: {webhook_url: "${SLACK_WEBHOOK}"}
storage:
  enabled: false
""",
    "sql_postgres.yaml": """\
name: "user_sessions_postgresql"
collector:
  type: "sql"
  params:
    connection_string: "${POSTGRES_URL}"
    query: |
      SELECT COUNT(DISTINCT user_id) as value, NOW() as timestamp
      FROM sessions WHERE created_at >= NOW() - INTERVAL '10 minutes' AND status = 'active'
    timeout: 30
    pool_size: 5
detector:
  type: "mad"
  params:
    window_size: "30 days"
    n_sigma: 3.0
    seasonal_features:
      - {name: "hour_of_day", expression: "EXTRACT(HOUR FROM NOW())"}
alerter:
  type: "slack"
  params: {webhook_url: "${SLACK_WEBHOOK}", cooldown_minutes: 60}
storage:
  enabled: true
  type: "sql"
  params: {connection_string: "${POSTGRES_URL}", save_detections: false, datapoints_retention_days: 90}
""",
}

PROFILES = """\
profiles:
  clickhouse_analytics:
    type: "clickhouse"
    host: "${CLICKHOUSE_HOST:-localhost}"
    port: ${CLICKHOUSE_PORT}
    database: "dtk_analytics"
    user: "${CLICKHOUSE_USER:-default}"
    password: "${CLICKHOUSE_PASSWORD}"
"""


def sessions(server: ClickHouseServer) -> None:
    """Two days of one session a minute; 300 in the newest complete ten minutes, and in the
    next ten (a run that crosses into them judges a spike too)."""
    for db in ("dtk_analytics", "dtk_metrics"):
        server.query(f"DROP DATABASE IF EXISTS {db}")
        server.query(f"CREATE DATABASE {db}")
    server.query(
        "CREATE TABLE dtk_analytics.sessions (timestamp DateTime, user_id UInt64) ENGINE = MergeTree() ORDER BY timestamp"
    )
    server.query(
        "CREATE TABLE dtk_analytics.etl_processed_data (created_at DateTime) ENGINE = MergeTree() ORDER BY created_at"
    )
    rows = [f"({t}, {t % 97})" for t in range(LAST - 2 * 86400, LAST, 60)]
    rows += [f"({LAST + i * 2}, {i})" for i in range(600)]
    server.query("INSERT INTO dtk_analytics.sessions VALUES " + ",".join(rows))
    server.query(f"INSERT INTO dtk_analytics.etl_processed_data VALUES ({NOW - 3600})")  # an hour stale


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    setup = (
        "CREATE TABLE sessions (user_id int, created_at timestamptz, status text);"
        "INSERT INTO sessions SELECT g, now() - g * interval '5 seconds', 'active' FROM generate_series(1, 60) g"
    )
    async with pg_database(setup, "dtk_run") as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"


async def api(request: web.Request) -> web.Response:
    assert request.headers["X-API-Key"] == "k-123" and request.query["metric_name"] == "api_requests"
    result = [{"metric": {"job": "api"}, "value": [time.time(), "0"]}]
    return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})


async def test_detectk_feature_files_dtk_run_against_real_servers(
    tmp_path: Path, clickhouse: ClickHouseServer, receiver: Receiver, postgres_url: str
) -> None:
    sessions(clickhouse)
    for name, text in FILES.items():
        write(tmp_path / "metrics" / name, text)
    write(tmp_path / "metrics" / "detectk_profiles.yaml", PROFILES)
    async with http_server(api, "GET", "/v1/analytics/metrics") as api_url:
        env = {
            "DETECTK_DATA_DIR": str(tmp_path / "state"),
            "CLICKHOUSE_HOST": "127.0.0.1",
            "CLICKHOUSE_PORT": str(clickhouse.http_port),
            "CLICKHOUSE_PASSWORD": "",
            "MATTERMOST_WEBHOOK": receiver.url.replace("/hook", "/mattermost"),
            "SLACK_WEBHOOK": receiver.url.replace("/hook", "/slack"),
            "POSTGRES_URL": postgres_url,
            "API_URL": api_url,
            "MY_API_KEY": "k-123",
        }
        valid = await asyncio.to_thread(cli, "dtk", "validate", str(tmp_path / "metrics"), env=env)
        assert valid.returncode == 0, valid.stdout
        assert f"Configuration valid: {len(FILES)} metric(s)" in valid.stdout
        runs = {}
        for name in FILES:
            args = ("dtk", "run", str(tmp_path / "metrics" / name))
            runs[name] = await asyncio.to_thread(
                cli, *args, "--profiles", str(tmp_path / "metrics" / "detectk_profiles.yaml"), env=env
            )
    for name, out in runs.items():
        assert out.returncode == 0, f"{name}:\n{out.stdout}\n{out.stderr}"
        assert "collected 1 point(s)" in out.stdout, f"{name}:\n{out.stdout}"

    by_path: dict[str, list[dict[str, object]]] = {}
    for path, body in zip(receiver.paths, receiver.received, strict=True):
        by_path.setdefault(path, []).append(body)
    (rich,) = [b for b in by_path["/mattermost"] if "sessions_seasonal" in str(b)]
    text = str(rich["attachments"][0]["text"])  # type: ignore[index]
    assert "**Value:** 300" in text and "(up)" in text and "**Score:**" in text
    assert "🔍 **Detector:** mad, window: 2d, threshold: 3.0 sigma" in text
    assert "{{" not in text and "{%" not in text
    slack = " ".join(str(b) for b in by_path["/slack"])
    assert "[FIRING] sessions_multi_threshold\\nValue: 300" in slack  # outside [50, 70], above +20 %
    assert "etl_job_heartbeat" in slack  # the last event is an hour old: stale
    assert "api_request_count" in slack  # the API's value_path gave 0, below 1
    assert "earlier period(s) collected first" in runs["seasonal_rich.yaml"].stdout
