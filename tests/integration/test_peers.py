"""Peer verification, the series limit and forgetting, on generated station data in SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from detectkd.alerting.message import default_text, variables
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.robust import RobustDetector
from detectkd.resources import Resources
from detectkd.runtime.runner import RunReport
from detectkd.specs.loader import MetricSpec, load_metrics
from detectkd.storage.sqlite import SqliteStore
from detectkd.templating import compile_template
from tests.support.files import write
from tests.support.runtimes import runtime
from tests.support.stations import DAYS, HOUR, LAST_DAY, T0, Scenario, generate, write_sqlite

METRIC = """\
name: temperature
schedule: {{interval: 1h, max_catch_up: 1000}}
collector:
  type: sqlite
  params:
    database: {db}
    query: |
      SELECT period_time, station, latitude, longitude, value FROM obs
      WHERE period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
  series_columns: [station]
  multi_period: true
{collector_extra}
detectors:
  - type: forecast
    params: {{season: 1d, window_size: 7d, n_sigma: 5, calibrated: false}}
  - type: flatline
    params: {{min_points: 4}}
{detectors_extra}alerter:
  type: log
  conditions: {{consecutive_anomalies: 2, peers: {require}}}
peers:
  mode: nearest
  k: 6
  radius_km: 60
"""


class Env:
    def __init__(self, tmp: Path, store: SqliteStore, resources: Resources) -> None:
        self.tmp, self.store, self.resources = tmp, store, resources
        self.db = tmp / "obs.db"

    def spec(self, require: str = "any", collector_extra: str = "", detectors_extra: str = "") -> MetricSpec:
        text = METRIC.format(
            db=self.db, require=require, collector_extra=collector_extra, detectors_extra=detectors_extra
        )
        write(self.tmp / "m" / "temperature.yaml", text)
        result = load_metrics([self.tmp / "m"], None, env={})
        assert result.ok, result.all_errors()
        return result.metrics["temperature"]

    async def replay(self, spec: MetricSpec, hours: int = DAYS * 24) -> RunReport:
        rt = runtime(spec, self.store, self.resources, None, {}, replay=True)
        return await rt.check(T0, T0 + hours * HOUR, notify=True, commit=True)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    store = SqliteStore(tmp_path / "dtk.db")
    await store.open()
    resources = Resources()
    yield Env(tmp_path, store, resources)
    await resources.close()
    await store.close()


def hour(period: int) -> int:
    return (period - T0) // HOUR


def fired(report: RunReport) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for a in report.alerts:
        if a.kind == "anomaly" and a.status == "firing":
            out.setdefault(a.labels["station"], []).append(hour(a.period))
    return out


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate()


async def test_anomalies_are_classified_isolated_or_shared(env: Env, scenario: Scenario) -> None:
    write_sqlite(scenario, env.db)
    report = await env.replay(env.spec())
    by = {(p.point.series.removeprefix("station="), hour(p.point.period)): p for p in report.points}
    spike_station, spike_hours = scenario.spike
    assert all(by[(spike_station, h)].peers is not None for h in spike_hours)
    assert {by[(spike_station, h)].peers.kind for h in spike_hours} == {"isolated"}  # type: ignore[union-attr]
    # Once the front has crossed the grid every station is cold: all of it is shared.
    after = scenario.front_start + 4
    front = [by[(s.name, after)] for s in scenario.stations if s.name not in scenario.faulty()]
    assert all(p.verdict.anomalous for p in front)
    assert {p.peers.kind for p in front if p.peers} == {"shared"}
    # Alerts carry the classification for receivers and templates.
    spike_alert = next(
        a for a in report.alerts if a.labels["station"] == spike_station and a.status == "firing"
    )
    assert spike_alert.extra["peers"] == "isolated" and spike_alert.extra["peers_judged"] >= 2
    text = default_text(spike_alert)
    judged = spike_alert.extra["peers_judged"]
    assert f"of {judged} peers deviate the same way" in text and "Peers: isolated (" in text
    assert (
        compile_template("{{ peers }}/{{ extra.peer_share }}")
        .render(**variables(spike_alert))
        .startswith("isolated/")
    )


async def test_require_isolated_alerts_sensor_faults_not_the_front(env: Env, scenario: Scenario) -> None:
    write_sqlite(scenario, env.db)
    report = await env.replay(env.spec(require="isolated"))
    got = fired(report)
    assert set(got) == scenario.faulty(), got
    assert all(h >= LAST_DAY for hours in got.values() for h in hours)


async def test_require_shared_alerts_the_front_not_the_faults(env: Env, scenario: Scenario) -> None:
    write_sqlite(scenario, env.db)
    report = await env.replay(env.spec(require="shared"))
    got = fired(report)
    # Every alert is the front reaching that station (faulty stations feel the front too);
    # none is a sensor fault.
    for s in scenario.stations:
        for h in got.get(s.name, []):
            assert scenario.front_hits(s) <= h <= scenario.front_hits(s) + 4, (s.name, h)
    assert len(got) >= len(scenario.stations) - 2, got


async def test_series_limit_refuses_new_series_with_a_clear_error(env: Env, scenario: Scenario) -> None:
    write_sqlite(scenario, env.db, hours=30)
    spec = env.spec(collector_extra="  max_series: 10")
    rt = runtime(spec, env.store, env.resources, None, {}, replay=True)
    report = await rt.check(T0, T0 + 30 * HOUR, notify=True, commit=True)
    judged = {p.point.series for p in report.points}
    assert judged == {f"station={s.name}" for s in scenario.stations[:10]}  # the first ten, sorted
    error = rt.status.series_error
    assert error is not None and "6 new series refused" in error and "max_series is 10" in error
    assert "station=s22" in error and error in report.warnings
    assert rt.api()["series_error"] == error and rt.status.state == "ok"  # known series keep working
    stored = await env.store.read_points("temperature", None, T0, T0 + 30 * HOUR)
    assert len(stored) == 10


async def test_a_vanished_series_goes_nodata_then_is_forgotten_for_good(env: Env, scenario: Scenario) -> None:
    import sqlite3

    write_sqlite(scenario, env.db, hours=150)
    conn = sqlite3.connect(env.db)
    conn.execute(
        "DELETE FROM obs WHERE station = 's33' AND period_time >= datetime(?, 'unixepoch')",
        (T0 + 100 * HOUR,),
    )
    conn.commit()
    conn.close()
    extra = "  - type: auto\n  - type: mad\n    params: {window_size: 2d, use_weighted: false}\n"
    spec = env.spec(collector_extra="  forget_after: 6h", detectors_extra=extra)
    rt = runtime(spec, env.store, env.resources, None, {}, replay=True)
    report = await rt.check(T0, T0 + 120 * HOUR, notify=True, commit=True)
    gone = "station=s33"
    auto, mad = rt.detectors[-2:]
    assert isinstance(auto, AutoDetector) and isinstance(mad, RobustDetector)
    for kept in (auto._memo, mad._memo):  # per-series detector state goes with the series
        assert gone not in kept and "station=s32" in kept
    nodata = [(a.status, hour(a.period)) for a in report.alerts if a.series == gone and a.kind == "nodata"]
    assert nodata == [("firing", 102)]  # three empty periods (100, 101, 102)
    judged = sorted(hour(p.point.period) for p in report.points if p.point.series == gone)
    assert judged[-1] == 106 and len(judged) == 107  # judged up to six hours empty, then never
    assert gone not in rt.states and gone not in rt.memory.windows
    rows = await env.store.load_states()
    assert ("temperature", gone) not in rows and ("temperature", "station=s32") in rows
    # A restart reads windows from stored points, which still hold s33's last week: not revived.
    states = {s: st for (m, s), st in rows.items() if m == "temperature"}
    again = runtime(spec, env.store, env.resources, None, states)
    later = await again.run(T0 + 130 * HOUR)
    assert later.points and gone not in {p.point.series for p in later.points}
    assert gone not in again.memory.windows


async def test_a_series_forgotten_and_back_in_the_same_batch_keeps_its_new_state(
    env: Env, scenario: Scenario
) -> None:
    import sqlite3

    write_sqlite(scenario, env.db, hours=130)
    conn = sqlite3.connect(env.db)
    conn.execute(
        "DELETE FROM obs WHERE station = 's33' AND period_time >= datetime(?, 'unixepoch') "
        "AND period_time < datetime(?, 'unixepoch')",
        (T0 + 100 * HOUR, T0 + 110 * HOUR),
    )
    conn.commit()
    conn.close()
    rt = runtime(env.spec(collector_extra="  forget_after: 6h"), env.store, env.resources, None, {})
    report = await rt.check(T0, T0 + 120 * HOUR, notify=False, commit=True)
    judged = sorted(hour(p.point.period) for p in report.points if p.point.series == "station=s33")
    assert 106 in judged and 107 not in judged and judged[-1] == 119  # forgotten at 106, back at 110
    assert ("temperature", "station=s33") in await env.store.load_states()
    assert "station=s33" in rt.states and "station=s33" in rt.memory.windows
