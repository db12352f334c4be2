"""Issue 14: a metric in Europe/Berlin on a PostgreSQL `timestamptz` column, compared with
the naive `'{{ period_start }}'` text, asks for the wrong hours; the metric says why once,
and `period_start_ts` asks for the right ones. Real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.support.databases import pg_database
from tests.support.files import write
from tests.support.inprocess import running

STEP = 600
NOW = int(time.time()) // STEP * STEP


@pytest.fixture
async def events_db() -> AsyncIterator[str]:
    # One event a minute for the last six hours, up to now.
    setup = (
        "CREATE TABLE ev (t timestamptz, v double precision);"
        f"INSERT INTO ev SELECT to_timestamp({NOW + STEP - 1} - g * 60), 1 FROM generate_series(0, 360) g"
    )
    async with pg_database(setup, "dtk_tz") as name:
        yield name


def metric(tmp_path: Path, db: str, where: str) -> None:
    write(
        tmp_path / "metrics.d" / "events.yaml",
        f"""\
name: events
schedule: {{interval: 10m, timezone: Europe/Berlin, warmup: 0s}}
collector:
  type: postgres
  params:
    host: 127.0.0.1
    port: 5432
    user: postgres
    database: {db}
    query: "SELECT sum(v) AS value FROM ev WHERE {where}"
detector:
  type: threshold
  params: {{operator: greater_than, threshold: 1000}}
alerter:
  type: log
""",
    )


def probes(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e.get("event") == "no data, timezone suspected"]


async def test_naive_period_text_on_timestamptz_is_explained_and_period_start_ts_works(
    tmp_path: Path, events_db: str
) -> None:
    metric(tmp_path, events_db, "t >= '{{ period_start }}' AND t < '{{ period_finish }}'")
    async with running(tmp_path) as d:
        d.scheduler.pause()
        rt = d.slots["events"].runtime
        with capture_logs() as logs:
            report = await rt.run(NOW)
            await rt.run(NOW)  # said once, not every run
        assert [pr.point.value for pr in report.points] == [None]  # NO DATA: the wrong hours
        (line,) = probes(logs)
        assert "Europe/Berlin" in str(line["why"]) and "period_start_ts" in str(line["why"])
        assert any("period_start_ts" in w for w in report.warnings)

    ts = "t >= to_timestamp({{ period_start_ts }}) AND t < to_timestamp({{ period_finish_ts }})"
    metric(tmp_path, events_db, ts)
    async with running(tmp_path) as d:
        d.scheduler.pause()
        with capture_logs() as logs:
            report = await d.slots["events"].runtime.run(NOW)
        assert [pr.point.value for pr in report.points] == [10.0]  # ten minutes, one event each
        assert probes(logs) == []
