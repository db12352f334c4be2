"""`runtime.where.enrich` on a real SQLite source: the newest FIRING period of a run gets the
where, an older one of a catch-up a note; the outbox payloads and the FIRING series' alert
states carry it; a metric without `explain:` is left alone."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

from detectkd.alerting.alert import Alert
from detectkd.alerting.state import SeriesState, Status
from detectkd.resources import Resources
from detectkd.runtime.judge import Outcome
from detectkd.runtime.where import Breakdown, enrich, where_lines_of
from detectkd.specs.loader import load_metrics
from detectkd.storage.base import NewOutboxItem, RunRecord
from tests.support.alerts import make_alert
from tests.support.files import write

HOUR = 3600
NOW = 1_767_225_600  # 2026-01-01 00:00 UTC: the anomalous period


def shop(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (ts TEXT, region TEXT)")
    rows = []
    for day in range(8):
        for hour in (0, -1):
            start = NOW - day * 86400 + hour * HOUR
            for region, n in (("eu", 30), ("us", 20), ("asia", 10)):
                n = 3 if (day, hour, region) == (0, 0, "eu") else n + day % 2
                stamp = f"strftime('%Y-%m-%d %H:%M:%S', {start} + 60, 'unixepoch')"
                rows += [(stamp, region)] * n
    for stamp, region in rows:
        conn.execute(f"INSERT INTO orders VALUES ({stamp}, ?)", (region,))
    conn.commit()
    conn.close()


def alert(period: int, series: str = "") -> Alert:
    return make_alert(
        series,
        period=period,
        started_at=period,
        value=33.0,
        expected=60.0,
        lower=50.0,
        upper=70.0,
        score=0.9,
        direction="down",
        interval_seconds=HOUR,
    )


async def test_the_newest_firing_is_explained_and_stored_with_the_alert(
    tmp_path: Path, resources: Resources
) -> None:
    shop(tmp_path / "shop.db")
    query = (
        "SELECT region, count(*) AS value FROM orders WHERE ts >= '{{ period_start }}' "
        "AND ts < '{{ period_finish }}' GROUP BY region"
    )
    write(
        tmp_path / "m" / "orders.yaml",
        f"""\
name: orders
schedule: {{interval: 1h}}
collector:
  type: sqlite
  params: {{database: "{tmp_path / "shop.db"}", query: "SELECT 1 AS value"}}
explain:
  query: "{query}"
  dimensions: [region]
""",
    )
    spec = load_metrics([tmp_path / "m"], None, env={}).metrics["orders"]
    b = Breakdown.of(spec, resources)
    assert b is not None
    older, newest = alert(NOW - HOUR, "a"), alert(NOW, "b")
    firing = SeriesState(status=Status.FIRING, since=NOW)
    record = RunRecord("orders", states={"a": firing, "b": firing})
    record.outbox = [NewOutboxItem(a.key, "orders", a.series, "log:x", a.to_json()) for a in (older, newest)]
    out = Outcome(alerts=[older, newest], states=dict(record.states))
    await enrich(b, record, out)
    told = out.alerts[1].extra
    assert told["where"][0]["segment"] == {"region": "eu"} and told["where"][0]["value"] == 3
    assert out.alerts[0].extra == {"where_error": "where: not explained (an older period of a catch-up)"}
    assert Alert.from_json(record.outbox[1].payload).extra == told
    assert (
        record.states["b"] is out.states["b"] and json.loads(record.states["b"].where or "")["period"] == NOW
    )
    assert where_lines_of(out.states["b"])[1].startswith("  1. region=eu: 3, expected 31 (-90%)")
    # an Alertmanager re-send of series b (next run) keeps the where in its annotations
    resend = replace(alert(NOW + HOUR, "b"), resent=NOW + HOUR)
    again = RunRecord(
        "orders", outbox=[NewOutboxItem(resend.key, "orders", "b", "alertmanager:x", resend.to_json())]
    )
    later = Outcome(alerts=[resend], states=dict(out.states))
    await enrich(b, again, later)
    assert later.alerts[0].extra["where"] == told["where"]
    assert Alert.from_json(again.outbox[0].payload).extra["where"] == told["where"]
    # a metric without explain: nothing asked, nothing changed
    plain = RunRecord("orders", outbox=list(record.outbox))
    await enrich(None, plain, Outcome(alerts=[alert(NOW)]))
    assert plain.outbox == record.outbox
    await b.close()
