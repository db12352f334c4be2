"""`shadow:` variants: validation (file, line, key; the cap), resolution (detectors replace,
conditions overlay), the stored state's fingerprint, and the comparison's counting."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from detectkd.alerting.alert import Alert
from detectkd.alerting.feedback import Feedback
from detectkd.alerting.state import SeriesState, Status
from detectkd.runtime.shadow import _doc, _states
from detectkd.runtime.shadow_compare import LIVE, chart_spans, compare
from detectkd.specs.loader import load_metrics
from detectkd.storage.base import ShadowAlert
from tests.support.files import write

BASE = """\
name: orders
collector:
  type: sqlite
  params: {database: /tmp/x.db, query: "SELECT 1 AS value"}
detector: {type: threshold, params: {threshold: 50}}
alerter:
  type: log
  conditions: {consecutive_anomalies: 3, direction: up}
"""


def load(tmp_path: Path, shadow: str):  # type: ignore[no-untyped-def]
    write(tmp_path / "metrics" / "m.yaml", BASE + shadow)
    return load_metrics([tmp_path / "metrics"], None, env={})


def test_a_file_without_shadow_is_unchanged(tmp_path: Path) -> None:
    result = load(tmp_path, "")
    assert result.ok and result.metrics["orders"].shadows == ()


def test_variants_replace_detectors_and_overlay_conditions(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        """\
shadow:
  - name: tight
    detector: {type: threshold, params: {threshold: 20}}
  - name: quick
    conditions: {consecutive_anomalies: 1}
""",
    )
    assert result.ok, result.all_errors()
    spec = result.metrics["orders"]
    tight, quick = spec.shadows
    assert tight.detectors[0].params.threshold == 20
    assert tight.conditions == spec.conditions  # none given: the metric's
    assert quick.detectors == spec.detectors  # none given: the metric's
    assert (quick.conditions.consecutive_anomalies, quick.conditions.direction) == (1, "up")  # overlaid
    assert len({tight.fingerprint, quick.fingerprint}) == 2
    # The metric's own judging is untouched: a shadow edit restarts keeping its state.
    assert spec.detector_fingerprint == load(tmp_path, "").metrics["orders"].detector_fingerprint


BAD = [
    ("  - name: a\n    collector: {type: sqlite}\n", 11, "shadow[0].collector", "unknown key 'collector'"),
    ("  - name: a\n    alerter: {type: log}\n", 11, "shadow[0].alerter", "valid keys here: conditions, detector"),
    ("  - name: a\n", 10, "shadow[0]", "needs `detector`, `detectors` or `conditions`"),
    ("  - name: a b\n    conditions: {}\n", 10, "shadow[0].name", "should match pattern"),
    ("  - name: a\n    detector: {type: madd}\n", 11, "shadow[0].detector.type", "unknown detector type 'madd'"),
    ("  - name: a\n    detector: {type: mad, params: {n_sigmaa: 3}}\n", 11, "shadow[0].detector.params.n_sigmaa",
     "unknown key"),
    ("  - name: a\n    detectors: [{type: mad, id: x}, {type: iqr, id: x}]\n", 11, "shadow[0].detectors[1].id", "duplicate detector id"),
    ("  - name: a\n    conditions: {consecutive_anomalies: 0}\n", 11,
     "shadow[0].conditions.consecutive_anomalies", "greater than or equal to 1"),
    ("  - name: a\n    conditions: {peers: shared}\n", 11, "shadow[0].conditions.peers", "needs a top-level `peers:`"),
    ("  - name: a\n    conditions: {}\n  - name: a\n    conditions: {}\n", 12, "shadow[1].name",
     "duplicate shadow variant name 'a'"),
    ("".join(f"  - name: v{i}\n    conditions: {{}}\n" for i in range(6)), 9, "shadow",
     "at most 5 shadow variants per metric, not 6"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "line", "key", "message"), BAD, ids=[b[2] + ":" + b[3][:20] for b in BAD])
def test_bad_variants_name_file_line_and_key(
    tmp_path: Path, body: str, line: int, key: str, message: str
) -> None:
    result = load(tmp_path, "shadow:\n" + body)
    assert not result.ok and "orders" not in result.metrics
    issues = [(i.line, i.key) for i in result.all_errors() if message in i.message]
    assert issues == [(line, key)], result.all_errors()
    assert all(i.file.endswith("m.yaml") for i in result.all_errors())


def test_a_stored_state_is_kept_only_while_the_variant_judges_the_same() -> None:
    firing = SeriesState(Status.FIRING, 3, since=600, notified_since=600, last_period=1200)
    doc = _doc({"region=eu": firing}, "fp1")
    assert _states(doc, "fp1") == {"region=eu": firing}
    assert _states(doc, "fp2") == {}  # the variant changed: afresh
    assert _states("{not json", "fp1") == {} and _states('{"fingerprint": "fp1"}', "fp1") == {}
    assert _states(None, "fp1") == {}


def alert(series: str, status: Literal["firing", "resolved"], period: int, started: int) -> str:
    a = Alert(
        metric="m",
        series=series,
        labels={},
        status=status,
        period=period,
        started_at=started,
        value=1.0,
        expected=None,
        lower=None,
        upper=None,
        score=0.9,
        direction="up",
        detector="d",
        interval_seconds=60,
    )
    return a.to_json()


def row(
    variant: str, series: str, status: Literal["firing", "resolved"], period: int, started: int
) -> ShadowAlert:
    return ShadowAlert(
        "m", variant, f"{series}|{status}|{started}", series, period, alert(series, status, period, started)
    )


def test_the_comparison_counts_agreements_misses_and_labels() -> None:
    rows = [
        # The metric: an episode on a at 1000..1300, one on b at 5000 (still open).
        row(LIVE, "a", "firing", 1000, 1000), row(LIVE, "a", "resolved", 1300, 1000),
        row(LIVE, "b", "firing", 5000, 5000),
        # `tight`: a at 1200..1500 (agrees with the metric's), c at 3000..3100 (its own).
        row("tight", "a", "firing", 1200, 1200), row("tight", "a", "resolved", 1500, 1200),
        row("tight", "c", "firing", 3000, 3000), row("tight", "c", "resolved", 3100, 3000),
        # A variant since removed from the file: still listed, marked.
        row("old", "b", "firing", 6000, 6000),
    ]  # fmt: skip
    labels = [
        Feedback("m", "c", 3050, "incident", 3050, "x", 0.0),  # tight catches it, the metric misses
        Feedback("m", "a", 1250, "false_alarm", 1250, "x", 0.0),  # both raise it
        Feedback("m", "d", 9000, "incident", 9100, "x", 0.0),  # nobody
    ]
    got = compare(rows, labels, ["tight", "quiet"], until=10_000)
    assert (got["live"]["alerts"], got["live"]["incidents_caught"], got["live"]["false_alarms_raised"]) == (
        2,
        0,
        1,
    )
    tight, quiet, old = got["variants"]
    assert [v["name"] for v in (tight, quiet, old)] == ["tight", "quiet", "old"]
    assert (tight["alerts"], tight["agreed"], tight["only_variant"], tight["missed"]) == (2, 1, 1, 1)
    assert (tight["incidents"], tight["incidents_caught"], tight["false_alarms_raised"]) == (2, 1, 1)
    assert (
        tight["notifications"] == 4 and [n["status"] for n in tight["listed"]] == ["firing", "resolved"] * 2
    )
    assert (quiet["alerts"], quiet["missed"], quiet["configured"]) == (0, 2, True)
    assert (old["alerts"], old["agreed"], old["configured"]) == (1, 1, False)  # b's open episode overlaps


def test_the_chart_draws_configured_variants_anomaly_episodes_in_file_order() -> None:
    rows = [
        row(LIVE, "a", "firing", 1000, 1000),
        row("b", "a", "firing", 1200, 1200),
        row("a", "a", "firing", 1300, 1300),
        row("a", "a", "resolved", 1400, 1300),
        row("gone", "a", "firing", 1500, 1500),
    ]
    assert chart_spans(rows, ["a", "b"]) == [
        {"variant": "a", "index": 0, "series": "a", "started_at": 1300, "resolved_at": 1400},
        {"variant": "b", "index": 1, "series": "a", "started_at": 1200, "resolved_at": None},
    ]


REUSE = """\
shadow:
  - name: quick
    conditions: {consecutive_anomalies: 1, direction: both}
  - name: tighter
    detector: {type: mad, params: {window_size: 100, n_sigma: 2, min_samples: 20, use_weighted: false}}
"""


async def judged_by_variants(
    tmp_path: Path, reuse: bool
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """The metric (a `mad`) judged on 300 noisy points with spikes, a batch then live runs,
    and its variants beside it; what they would have sent and their states."""
    import random
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from detectkd.collectors.points import Point
    from detectkd.detectors import registry
    from detectkd.runtime.judge import JudgeContext, judge
    from detectkd.runtime.memory import SeriesMemory
    from detectkd.runtime.shadow import Recorded, ShadowSet
    from detectkd.storage.memory import MemoryStore
    from detectkd.timegrid import Grid

    text = BASE.replace(
        "{type: threshold, params: {threshold: 50}}",
        "{type: mad, params: {window_size: 100, n_sigma: 4, min_samples: 20, use_weighted: false}}",
    )
    write(tmp_path / "metrics" / "m.yaml", text + REUSE)
    spec = load_metrics([tmp_path / "metrics"], None, env={}).metrics["orders"]
    tz = ZoneInfo("UTC")
    grid = Grid(spec.config.schedule.interval, tz)
    dets = []
    for d in spec.detectors:
        kind = registry.lookup(d.type)
        assert kind is not None
        dets.append(kind.build(d.params, grid.step, d.id))
    memory = SeriesMemory(dets, grid, tz)
    memory.load({})
    ctx = JudgeContext.of(spec, dets, grid)
    store = MemoryStore()

    async def data() -> MemoryStore:
        return store

    rt = SimpleNamespace(store=store, spec=spec, grid=grid, data=data)
    shadows = ShadowSet(spec, grid, tz, ctx, None, reuse=reuse)
    assert shadows.reuse is reuse

    def never(*_: Any) -> None:
        raise AssertionError("a reused detector ran")

    for v in shadows.variants:  # reused: the variant's own detector instance is never asked
        for used in v.ctx.detectors:
            if isinstance(used, Recorded):
                used.inner = SimpleNamespace(detect=never)
    rnd = random.Random(3)
    t0 = 1_767_225_600
    points = [
        Point(
            "",
            t0 + k * grid.step,
            100 + rnd.gauss(0, 3) + (40 if k % 37 >= 34 else 0) + (9 if k % 23 == 0 else 0),
        )
        for k in range(300)
    ]
    states: dict[str, Any] = {}
    for chunk in [points[:120], *([p] for p in points[120:])]:
        live = len(chunk) == 1
        memory.begin(chunk[0].period)
        out = judge(chunk, memory, states, ctx.run(chunk[-1].period, live))
        memory.commit()
        states = out.states
        await shadows.run(rt, chunk, [], chunk[0].period, chunk[-1].period, live, out)  # type: ignore[arg-type]
    rows = await store.shadow_alerts("orders", 0, 2**40, 10_000)
    return [(r.variant, r.key) for r in rows], [dict(v.states) for v in shadows.variants]


async def test_a_conditions_only_variant_reuses_the_metric_s_detections_with_the_same_verdicts(
    tmp_path: Path,
) -> None:
    reused = await judged_by_variants(tmp_path / "a", reuse=True)
    detected = await judged_by_variants(tmp_path / "b", reuse=False)
    assert reused == detected
    variants = {v for v, _ in reused[0]}
    assert {"quick", "tighter", ""} <= variants  # every one alerted at least once
