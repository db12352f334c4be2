"""A metric with `export: true` shows each series' value, band and score on /metrics, under
the daemon's `export_max_series` cap; a metric without it shows none."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.files import write
from tests.support.inprocess import running

STEP = 600
NOW = int(time.time()) // STEP * STEP


def metric(tmp_path: Path, name: str, export: bool) -> None:
    write(
        tmp_path / "metrics.d" / f"{name}.yaml",
        f"""\
name: {name}
export: {str(export).lower()}
schedule: {{interval: 10m}}
collector:
  type: sqlite
  params:
    database: {tmp_path / "src.db"}
    query: |
      SELECT period_time, region, value FROM src
      WHERE period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
  series_columns: [region]
detector:
  type: mad
  params: {{window_size: 20, n_sigma: 4, min_samples: 5}}
alerter:
  type: log
""",
    )


def source(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE src (period_time TEXT, region TEXT, value REAL)")
    rows = [
        (t, r, 100.0 + (t // STEP) % 3 + (50 if r == "us" else 0))
        for t in range(NOW - 30 * STEP, NOW, STEP)
        for r in ("eu", "us", "apac")
    ]
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?, ?)", rows)
    conn.commit()
    conn.close()


def samples(text: str, name: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["metric"], s.labels.get("region", "")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name
    }


async def test_exported_series_appear_on_metrics_under_the_cap(tmp_path: Path) -> None:
    source(tmp_path)
    metric(tmp_path, "orders", export=True)
    metric(tmp_path, "quiet", export=False)
    async with running(tmp_path, export_max_series=2) as d:
        d.scheduler.pause()
        for name in ("orders", "quiet"):
            await d.slots[name].runtime.run(NOW)
        text = d.telemetry.exposition().decode()
    values = samples(text, "detectk_series_value")
    assert set(values) == {("orders", "apac"), ("orders", "eu")}  # sorted, two of three: the cap
    newest = 100.0 + ((NOW - STEP) // STEP) % 3
    assert values[("orders", "eu")] == newest
    expected = samples(text, "detectk_series_expected")
    lower, upper = samples(text, "detectk_series_lower"), samples(text, "detectk_series_upper")
    assert lower[("orders", "eu")] <= expected[("orders", "eu")] <= upper[("orders", "eu")]
    assert 0 <= samples(text, "detectk_series_score")[("orders", "eu")] < 0.5
    exported = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "detectk_series_exported"
    ]
    refused = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "detectk_series_export_refused_total"
    ]
    assert exported == [2.0] and refused == [1.0]
