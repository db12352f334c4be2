"""The demo's three injected anomalies, through the demo metrics' own detectors and rules.

The demo generator's rows are aggregated per 10-second period as the demo queries
do; orders per region go through the default `auto` with the demo's conditions,
checkout latency through its zscore. Each injected anomaly must send a FIRING:
the orders spike in `eu`, the latency jump and the drop of `us` to a tenth (a
small count: it alarms only because `auto` judges counts on the square-root scale).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from detectkd import demo
from detectkd.alerting.state import Rules, SeriesState, decide, step
from detectkd.detectors import registry
from detectkd.detectors.base import Current, History
from detectkd.specs.loader import load_metrics
from tests.support.files import REPO

STEP = 10


def periods(
    seconds: int, t0: float, day0: float | None = None, seed: int = 5
) -> tuple[dict[str, dict[int, float]], dict[int, float]]:
    rng = random.Random(seed)
    day0 = demo.day_start(t0) if day0 is None else day0
    orders: dict[str, Counter[int]] = defaultdict(Counter)
    latency: dict[int, list[float]] = defaultdict(list)
    start = int(t0) - demo.HISTORY_S
    for t in range(start, int(t0) + seconds):
        rows, ms = demo.second_rows(float(t), t0, rng, day0)
        p = t - t % STEP
        for _, region, _ in rows:
            orders[region][p] += 1
        for region in demo.REGIONS:
            orders[region][p] += 0  # a period without orders is a 0, as COUNT(*) would not say
        latency[p].append(ms)
    return {r: dict(c) for r, c in orders.items()}, {p: sum(v) / len(v) for p, v in latency.items()}


def fired(spec_name: str, series: dict[int, float]) -> list[int]:
    spec = load_metrics(
        [REPO / "etc" / "detectk" / "metrics.d"],
        REPO / "etc" / "detectk" / "profiles.yaml",
        env={"DETECTK_DEMO_DB": "/nonexistent/shop.db"},
    ).metrics[spec_name]
    detectors = []
    for d in spec.detectors:
        kind = registry.lookup(d.type)
        assert kind is not None
        detectors.append(kind.build(d.params, STEP, d.id))
    rules = Rules.of(spec.conditions, timedelta(seconds=STEP))
    state, out = SeriesState(), []
    times = sorted(series)
    for i, t in enumerate(times):
        hist = History.empty() if i == 0 else _history(times[:i], series)
        results = [d.detect(hist, Current(t, series[t], {}, "s")) for d in detectors]
        state, notes = step(state, t, decide(results, spec.conditions), rules, True)
        out += [t for n in notes if n.kind == "anomaly" and n.status == "firing"]
    return out


def _history(times: list[int], series: dict[int, float]) -> History:
    import numpy as np

    keep = times[-1200:]
    return History(np.asarray(keep, np.int64), np.asarray([series[t] for t in keep], np.float64), {})


@pytest.mark.parametrize(
    "hour",
    [4.0, demo.START_HOUR],  # the demo's clock at the start: 04:00 (quiet: `us` has ~19 orders a
    ids=["night", "afternoon"],  # period) and the demo's own, the busy afternoon
)
def test_all_three_demo_anomalies_alert(hour: float) -> None:
    t0 = 1_764_000_000.0
    orders, latency = periods(demo.CYCLE_S, t0, t0 - hour * 3600)
    live = int(t0)
    eu = [t - live for t in fired("demo_orders", orders["eu"]) if t >= live]
    us = [t - live for t in fired("demo_orders", orders["us"]) if t >= live]
    lat = [t - live for t in fired("demo_checkout_latency", latency) if t >= live]
    assert any(30 <= t < 65 for t in eu), eu  # spike: +35 s .. +60 s
    assert any(95 <= t < 130 for t in lat), lat  # latency x4: +100 s .. +125 s
    assert any(160 <= t < 200 for t in us), us  # drop to a tenth: +165 s .. +195 s
    quiet = [t for t in eu + us + lat if not (30 <= t < 200)]
    assert len(quiet) <= 1, quiet  # and (almost) nothing else in the cycle


def test_the_eu_spike_fills_whole_periods_whatever_the_start_second() -> None:
    """The first 10-second period of `demo_orders` with a spiked second is spiked throughout,
    for a feeder started at any second (before, at 9 of 10 starts it was partly spiked)."""
    from detectkd.demo import PERIOD_S, anomaly_origin, factors

    for t0 in range(1_800_000_000, 1_800_000_010):
        origin = anomaly_origin(t0)
        assert t0 <= origin < t0 + PERIOD_S
        spiked = [t for t in range(t0, t0 + 120) if factors(t, origin)[0]["eu"] > 1]
        first = spiked[0] // PERIOD_S * PERIOD_S
        assert spiked[:PERIOD_S] == list(range(first, first + PERIOD_S)), t0


def test_the_demo_data_is_the_same_at_every_start() -> None:
    """The demo's clock starts at `START_HOUR` whatever the wall clock says, so the history and
    its noise are the same draws at every start (with data that followed the wall clock, about
    one start in a hundred drew a history whose last minutes broke `eu`'s range, and the rest
    period held the spike: the README's first command then showed no orders FIRING in time)."""
    t0, later = 1_764_000_000.0, 1_764_012_340.0  # the same second of a period
    a = periods(60, t0, seed=7)[0]["eu"]
    b = periods(60, later, seed=7)[0]["eu"]
    assert [a[t] for t in sorted(a)] == [b[t] for t in sorted(b)]
    c = periods(60, later, later - 4 * 3600, seed=7)[0]["eu"]  # a clock that followed the wall
    assert [a[t] for t in sorted(a)] != [c[t] for t in sorted(c)]


def test_a_run_on_an_earlier_runs_database_continues_its_clock(tmp_path: Path) -> None:
    """Review: the new run's clock restarted at `START_HOUR`, a jump in the daily curve at the
    earlier run's last row."""
    db = demo.open_db(tmp_path / "shop.db")
    first = demo.clock(db, 1_764_000_000.0)
    assert first == demo.day_start(1_764_000_000.0)
    assert demo.clock(db, 1_764_003_600.0) == first  # an hour later, on the same database
    fresh = demo.open_db(tmp_path / "other.db")
    assert demo.clock(fresh, 1_764_003_600.0) == first + 3600
