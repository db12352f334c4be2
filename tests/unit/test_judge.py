"""The judging core on its own: no store, no clock, no collector."""

from __future__ import annotations

from pathlib import Path

from detectkd.alerting.state import SeriesState, Status
from detectkd.collectors.points import Point
from detectkd.detectors import registry
from detectkd.runtime.judge import JudgeContext, judge
from detectkd.runtime.memory import SeriesMemory
from detectkd.specs.loader import load_metrics
from detectkd.timegrid import Grid
from tests.conftest import write

STEP = 600
T0 = 1_795_000_000 - 1_795_000_000 % STEP

METRIC = """\
name: orders
schedule: {interval: 10m}
collector:
  type: sqlite
  params: {database: /nonexistent.db, query: "SELECT 1 AS value"}
detector:
  type: mad
  params: {window_size: 100, n_sigma: 4, use_weighted: false, min_samples: 20}
alerters:
  - {type: webhook, params: {url: 'http://a.example/'}}
  - {type: log}
"""


def setup(tmp_path: Path) -> tuple[SeriesMemory, JudgeContext]:
    write(tmp_path / "m" / "orders.yaml", METRIC)
    spec = load_metrics([tmp_path / "m"], None, env={}).metrics["orders"]
    grid = Grid(spec.config.schedule.interval)
    detectors = [registry.DETECTORS[d.type].build(d.params, grid.step, d.id) for d in spec.detectors]
    memory = SeriesMemory(detectors, grid, grid.tz)
    return memory, JudgeContext.of(spec, detectors, grid)


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
