"""The judging core on its own: no store, no clock, no collector."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from detectkd.alerting.state import SeriesState, Status
from detectkd.collectors.points import Point
from detectkd.runtime.judge import judge
from tests.support.judging import STEP, T0, setup


def test_judge_returns_what_to_commit_and_leaves_its_inputs_alone(tmp_path: Path) -> None:
    memory, ctx = setup(tmp_path)
    points = [Point("", T0 + i * STEP, 100.0 + i % 5) for i in range(30)] + [Point("", T0 + 30 * STEP, 900.0)]
    states: dict[str, SeriesState] = {}
    out = judge(points, memory, states, ctx.run(last=T0 + 30 * STEP, notify=True))
    assert states == {}  # the caller's states: replaced by the caller after its commit
    assert out.states[""].status is Status.FIRING and out.touched == out.states
    assert [a.status for a in out.alerts] == ["firing"] and out.anomalies == 1
    # One outbox row per alerter, each named by the alerter's stable id.
    assert [r.channel for r in out.record.outbox] == [a.id for a in ctx.spec.alerters]
    assert len(out.record.points) == 31 and out.record.states == out.touched
    assert len(memory.windows[""]) == 31  # each point joined its window after being judged


def test_only_the_newest_period_notifies_and_absent_points_are_judged_not_stored(tmp_path: Path) -> None:
    memory, ctx = setup(tmp_path)
    points = [Point("", T0 + i * STEP, 100.0 + i % 5) for i in range(30)] + [Point("", T0 + 30 * STEP, 900.0)]
    quiet = judge(points, memory, {}, ctx.run(last=T0 + 31 * STEP, notify=True))
    assert quiet.alerts == [] and quiet.states[""].status is Status.FIRING  # fired in catch-up: owed
    gap = Point("", T0 + 31 * STEP, None)
    out = judge([gap], memory, quiet.states, ctx.run(last=T0 + 31 * STEP, notify=True, absent=[gap]))
    assert out.record.points == [] and out.reports[0].verdict.missing


TWO_DETECTORS = """\
name: latency
schedule: {interval: 10s}
collector:
  type: sqlite
  params: {database: /nonexistent.db, query: "SELECT 1 AS value"}
detectors:
  - {id: ceiling, type: threshold, params: {operator: greater_than, threshold: 400}}
  - {id: z, type: zscore, params: {window_size: 100, n_sigma: 3, use_weighted: false, min_samples: 20}}
alerters:
  - {type: log}
"""


def test_resolved_names_the_detector_that_fired_and_sub_minute_periods_show_seconds(
    tmp_path: Path,
) -> None:
    from detectkd.alerting.message import default_text

    memory, ctx = setup(tmp_path, TWO_DETECTORS, "latency")
    t0 = T0 + 7  # a period that is not on a whole minute
    values = [100.0 + i % 5 for i in range(30)] + [200.0] + [101.0] * 5  # 200: z fires, ceiling not
    states: dict[str, SeriesState] = {}
    alerts = []
    for i, v in enumerate(values):
        p = t0 + i * 10
        out = judge([Point("", p, v)], memory, states, ctx.run(last=p, notify=True))
        states = out.states
        alerts += out.alerts
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert {a.detector for a in alerts} == {"z"}  # not the threshold, whose score is higher now
    assert alerts[1].upper is not None and alerts[1].upper < 400  # z's range, not "n/a .. 400"
    text = default_text(alerts[0])
    fired = datetime.fromtimestamp(t0 + 300, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"Period: {fired}" in text  # to the second for a 10-second metric
    assert "0.50 is the alarm line" in text
    # Which baseline judged, in words, with what it expected.
    assert alerts[0].extra["basis"] == "the mean of the last 100 points (1000s)"
    assert f"Baseline: the mean of the last 100 points (1000s): {alerts[0].expected:,.4g}" in text


def test_a_count_is_never_expected_below_zero_but_a_signed_series_is(tmp_path: Path) -> None:
    memory, ctx = setup(tmp_path)
    counts = [Point("", T0 + i * STEP, float(i % 2 * 6)) for i in range(30)]  # 0, 6, 0, 6: wide band
    out = judge(counts, memory, {}, ctx.run(last=T0 + 29 * STEP, notify=False))
    lows = [r.lower for pr in out.reports for r in pr.results if r.lower is not None]
    assert lows and min(lows) == 0.0  # clamped: a count has no negative range

    memory, ctx = setup(tmp_path)
    signed = [Point("", T0 + i * STEP, float(i % 2 * 6 - 1)) for i in range(30)]  # -1, 5, -1, 5
    out = judge(signed, memory, {}, ctx.run(last=T0 + 29 * STEP, notify=False))
    lows = [r.lower for pr in out.reports for r in pr.results if r.lower is not None]
    assert lows and min(lows) < -1.0  # a series seen below zero keeps its band
