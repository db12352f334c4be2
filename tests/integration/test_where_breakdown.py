"""The breakdown of `explain:` against the real PostgreSQL: answers, caps, timeouts, and
hostile segment values shown escaped on the pages."""

from __future__ import annotations

import json
import time
from pathlib import Path

from detectkd.alerting.state import SeriesState, Status
from detectkd.resources import Resources
from detectkd.runtime.where import Breakdown, where_lines_of
from detectkd.specs.loader import load_metrics
from detectkd.ui.pages import alerts_html, render
from tests.support.databases import pg_database
from tests.support.files import write

HOUR = 3600
NOW = 1_767_225_600  # 2026-01-01 00:00 UTC


def breakdown(
    tmp_path: Path, res: Resources, db: str, query: str, timeout: str = "2s", cap: int = 10_000
) -> Breakdown:
    write(
        tmp_path / "m" / "orders.yaml",
        f"""\
name: orders
schedule: {{interval: 1h}}
collector:
  type: postgres
  params: {{host: 127.0.0.1, user: postgres, database: {db}, query: "SELECT 1 AS value"}}
explain:
  query: "{query}"
  dimensions: [region, device]
  timeout: {timeout}
  max_segments: {cap}
""",
    )
    result = load_metrics([tmp_path / "m"], None, env={})
    assert result.ok, result.all_errors()
    b = Breakdown.of(result.metrics["orders"], res)
    assert b is not None
    return b


SETUP = """
CREATE TABLE orders (ts timestamptz, region text, device text);
INSERT INTO orders
SELECT to_timestamp(t) + i * interval '1 s', r, d
FROM generate_series(1767225600 - 8 * 86400, 1767225600 + 3600, 3600) t,
     unnest(array['eu', 'us', 'asia', '<script>alert(1)</script>']) r,
     unnest(array['ios', 'web']) d,
     generate_series(1, 20 + (t / 3600) % 3) i
WHERE NOT (t = 1767225600 AND r = 'eu' AND d = 'ios' AND i > 2);
"""
QUERY = (
    "SELECT region, device, count(*) AS value FROM orders WHERE ts >= '{{ period_start }}'::timestamptz "
    "AND ts < '{{ period_finish }}'::timestamptz GROUP BY 1, 2"
)


async def test_a_combination_is_named_from_the_real_database(tmp_path: Path, resources: Resources) -> None:
    async with pg_database(SETUP) as db:
        b = breakdown(tmp_path, resources, db, QUERY)
        out = await b.where(NOW)
        await b.close()
    assert "where_error" not in out, out
    top = out["where"][0]
    assert top["segment"] == {"region": "eu", "device": "ios"} and top["value"] == 2


async def test_a_million_rows_are_capped_and_a_slow_query_times_out(
    tmp_path: Path, resources: Resources
) -> None:
    async with pg_database("SELECT 1") as db:
        huge = "SELECT 'r' || g AS region, 'd' AS device, 1 AS value FROM generate_series(1, 1000000) g"
        b = breakdown(tmp_path, resources, db, huge, cap=10_000)
        t = time.perf_counter()
        out = await b.where(NOW)
        await b.close()
        assert out == {"where_error": "where: breakdown failed: more than explain.max_segments (10,000) rows"}
        assert time.perf_counter() - t < 2.5
        b = breakdown(
            tmp_path, resources, db, "SELECT 'r' AS region, 'd' AS device, 1 AS value FROM pg_sleep(5)", "1s"
        )
        t = time.perf_counter()
        out = await b.where(NOW)
        await b.close()
        assert out["where_error"].startswith("where: breakdown failed:") and "1s" in out["where_error"]
        assert time.perf_counter() - t < 1.8


def test_hostile_segment_values_are_escaped_on_the_pages() -> None:
    hostile = '<script>alert(1)</script>"'
    told = {
        "where": [{"segment": {"region": hostile}, "value": 1.0, "expected": 9.0, "share": 1.0}],
        "period": 0,
    }
    st = SeriesState(status=Status.FIRING, where=json.dumps(told))
    lines = where_lines_of(st)
    assert lines and hostile in lines[1]
    rows = [{"metric": "orders", "series": "", "state": "firing", "since": 0, "labels": {}, "where": lines}]
    for page in (
        alerts_html(rows, False),
        render(
            "metric.html",
            m={"name": "orders", "where": {"": lines}},
            ranges=(),
            chosen="1d",
            config_text="",
            writable="",
        ),
    ):
        assert "<script>alert(1)" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert where_lines_of(SeriesState(status=Status.OK, where=json.dumps(told))) == []
