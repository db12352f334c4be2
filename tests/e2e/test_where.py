"""Where, end to end: the real daemon on a real PostgreSQL orders table; one region's orders
drop; the FIRING webhook (and its Slack-format message text) names that region first, and
/api and the alert and metric pages show it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.files import write
from tests.support.http import Receiver
from tests.support.process import DaemonProcess

STEP = 2
REGIONS = {"eu": 20, "us": 8, "asia": 6, "latam": 4}  # orders per period


@pytest.fixture
async def orders_db() -> AsyncIterator[str]:
    name = f"dtk_where_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    yield name
    await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    await admin.close()


METRIC = """\
name: orders
schedule: {{interval: {step}s, start_time: 300s, max_catch_up: 400}}
collector:
  type: postgres
  params:
    host: 127.0.0.1
    user: postgres
    database: {db}
    query: "SELECT count(*) AS value FROM orders WHERE {where}"
detector:
  type: mad
  params: {{window_size: 100, n_sigma: 3, use_weighted: false, min_samples: 20}}
alerter:
  type: webhook
  params: {{url: "${{HOOK}}"}}
  conditions: {{keep_firing_for: 10m}}  # FIRING while the pages are read
explain:
  query: "SELECT region, count(*) AS value FROM orders WHERE {where} GROUP BY region"
  dimensions: [region]
  timeout: 1s
  baseline_periods: 5
  baseline_step: 20s
"""
WHERE = (
    "ts >= '{{ period_start }}'::timestamp AT TIME ZONE 'UTC' "
    "AND ts < '{{ period_finish }}'::timestamp AT TIME ZONE 'UTC'"
)


async def test_one_regions_drop_is_named_first_in_the_firing(
    daemon: DaemonProcess, receiver: Receiver, orders_db: str
) -> None:
    now = int(time.time()) // STEP * STEP
    start, end = now - 400, now + 900
    pg = await asyncpg.connect(host="127.0.0.1", user="postgres", database=orders_db)
    await pg.execute("CREATE TABLE orders (ts timestamptz, region text)")
    values = ",".join(f"('{r}', {n})" for r, n in REGIONS.items())
    await pg.execute(  # n orders per region and period, one more every other period
        f"INSERT INTO orders SELECT to_timestamp(t) + i * interval '1 ms', r.region "
        f"FROM generate_series({start}, {end}, {STEP}) t, (VALUES {values}) r(region, n), "
        f"generate_series(1, r.n + (t / {STEP}) % 2) i"
    )
    write(daemon.root / "metrics.d" / "orders.yaml", METRIC.format(step=STEP, db=orders_db, where=WHERE))
    await daemon.start(env={"HOOK": receiver.url})
    ahead = int(time.time()) // STEP * STEP + 3 * STEP  # judged live, however long the start took
    await pg.execute(
        "DELETE FROM orders WHERE region = 'eu' AND ts >= to_timestamp($1) AND ts < to_timestamp($2)",
        ahead,
        ahead + STEP,
    )
    await pg.close()
    try:
        body = await receiver.wait_for(
            lambda b: b["metric"] == "orders" and b["status"] == "firing", timeout=60
        )
    except TimeoutError:
        print(daemon.logs()[-6000:])
        raise
    assert "where_error" not in body["extra"], body["extra"]
    assert body["extra"]["where"][0]["segment"] == {"region": "eu"}
    assert body["extra"]["where"][0]["expected"] >= 20 and body["extra"]["where"][0]["value"] == 0
    assert "Where:\n  1. region=eu: 0, expected " in body["message"]
    assert "of the change" in body["message"]
    # the alert rows of /api, the metric's /api entry and both pages show it
    status, text = await daemon.get("/api/v1/alerts")
    row = next(r for r in json.loads(text)["alerts"] if r["metric"] == "orders")
    assert row["where"][1].startswith("  1. region=eu: 0, expected ")
    entry = await daemon.metric("orders")
    assert entry is not None and entry["where"][""][1].startswith("  1. region=eu")
    for page in ("/ui/alerts", "/ui/metrics/orders"):
        status, text = await daemon.get(page)
        assert status == 200 and "1. region=eu: 0, expected" in text, page


SERIES = """\
name: orders_by_region
schedule: {{interval: {step}s, start_time: 300s, max_catch_up: 400}}
collector:
  type: postgres
  params:
    host: 127.0.0.1
    user: postgres
    database: {db}
    query: "SELECT region, count(*) AS value FROM orders WHERE {where} GROUP BY region"
  series_columns: [region]
detector:
  type: mad
  params: {{window_size: 100, n_sigma: 3, use_weighted: false, min_samples: 20}}
alerter:
  type: webhook
  params: {{url: "${{HOOK}}"}}
explain:  # no query: the metric's own series
  dimensions: [region]
  timeout: 1s
  baseline_periods: 5
  baseline_step: 20s
"""


async def test_a_multi_series_metric_is_explained_by_its_own_series(
    daemon: DaemonProcess, receiver: Receiver, orders_db: str
) -> None:
    now = int(time.time()) // STEP * STEP
    pg = await asyncpg.connect(host="127.0.0.1", user="postgres", database=orders_db)
    await pg.execute("CREATE TABLE orders (ts timestamptz, region text)")
    values = ",".join(f"('{r}', {n})" for r, n in REGIONS.items())
    await pg.execute(
        f"INSERT INTO orders SELECT to_timestamp(t) + i * interval '1 ms', r.region "
        f"FROM generate_series({now - 400}, {now + 900}, {STEP}) t, (VALUES {values}) r(region, n), "
        f"generate_series(1, r.n + (t / {STEP}) % 2) i"
    )
    write(daemon.root / "metrics.d" / "orders.yaml", SERIES.format(step=STEP, db=orders_db, where=WHERE))
    await daemon.start(env={"HOOK": receiver.url})
    ahead = int(time.time()) // STEP * STEP + 3 * STEP
    await pg.execute(
        "DELETE FROM orders WHERE region = 'eu' AND ts >= to_timestamp($1) + interval '3 ms' AND ts < to_timestamp($2)",
        ahead,
        ahead + STEP,
    )
    await pg.close()
    body = await receiver.wait_for(
        lambda b: b["series"] == "region=eu" and b["status"] == "firing", timeout=60
    )
    assert "where_error" not in body["extra"], body["extra"]
    assert body["extra"]["where"][0]["segment"] == {"region": "eu"}
    assert "Where:\n  1. region=eu: 2, expected " in body["message"]  # eu kept 2 orders of ~20
