"""ERROR notifications and their grouping per source."""

from __future__ import annotations

from detectkd.alerting.outage import HealthNotice, Outages


def tracker(n: int, source: str = "ch", error_runs: int = 1) -> Outages:
    o = Outages(group_wait=60, min_metrics=3)
    for i in range(n):
        o.track(f"m{i:02d}", source, notify=True, error_runs=error_runs)
    return o


def deliver(o: Outages, now: int) -> list[tuple[str, str, str]]:
    notes = o.due(now)
    for n in notes:
        o.sent(n)
    return [(n.kind, n.status, n.subject) for n in notes]


def test_twenty_metrics_of_one_source_give_one_grouped_alert_and_one_recovery() -> None:
    o = tracker(20)
    for i in range(20):  # they fail at their own offsets over 40 s
        o.observe(f"m{i:02d}", ok=False, now=1000 + 2 * i, error="connection refused")
        assert deliver(o, 1000 + 2 * i) == []  # group_wait: nobody is told yet
    notes = o.due(1060)
    assert [(n.kind, n.status, n.subject) for n in notes] == [("source_down", "firing", "ch")]
    assert len(notes[0].members) == 20 and notes[0].since == 1000 and notes[0].error == "connection refused"
    o.sent(notes[0])
    for t in range(1061, 1300, 30):  # still failing: quiet
        o.observe("m03", ok=False, now=t)
        assert deliver(o, t) == []
    o.observe("m07", ok=True, now=1300)  # one metric reaches the source again
    assert deliver(o, 1300) == [("source_down", "resolved", "ch")]
    assert deliver(o, 1400) == []


def test_a_lone_failing_metric_gets_its_own_error_after_error_runs() -> None:
    o = tracker(5, error_runs=2)
    o.observe("m01", ok=False, now=1000)
    assert deliver(o, 1100) == []  # one failure is not enough
    o.observe("m01", ok=False, now=1100)
    assert deliver(o, 1100) == [("error", "firing", "m01")]  # failing since 1000: group_wait passed
    o.observe("m01", ok=False, now=1200)
    assert deliver(o, 1200) == []
    o.observe("m01", ok=True, now=1300)
    assert deliver(o, 1300) == [("error", "resolved", "m01")]


def test_other_sources_and_keep_last_are_not_grouped_or_notified() -> None:
    o = tracker(2, source="pg")
    o.track("quiet", "pg", notify=False, error_runs=1)
    for name in ("m00", "m01", "quiet"):
        o.observe(name, ok=False, now=1000)
    # Three failing, but only two may notify: the group still counts all three.
    assert deliver(o, 1060) == [("source_down", "firing", "pg")]
    o2 = tracker(2, source="pg")
    o2.track("quiet", "pg", notify=False, error_runs=1)
    o2.observe("m00", ok=False, now=1000)
    o2.observe("quiet", ok=False, now=1000)
    assert deliver(o2, 1060) == [("error", "firing", "m00")]


def test_a_metric_still_failing_after_its_source_recovers_gets_its_own_error() -> None:
    o = tracker(4)
    for i in range(4):
        o.observe(f"m{i:02d}", ok=False, now=1000)
    assert deliver(o, 1060) == [("source_down", "firing", "ch")]
    for i in range(3):
        o.observe(f"m{i:02d}", ok=True, now=1100)
    assert deliver(o, 1100) == [("source_down", "resolved", "ch")]
    o.observe("m03", ok=False, now=1120)  # its own problem: the clock restarts
    assert deliver(o, 1150) == []
    assert deliver(o, 1180) == [("error", "firing", "m03")]


def test_state_survives_a_restart() -> None:
    o = tracker(3)
    for i in range(3):
        o.observe(f"m{i:02d}", ok=False, now=1000)
    (down,) = o.due(1060)
    o.sent(down)
    saved = o.sources["ch"].state()
    fresh = tracker(3)
    fresh.restore_source("ch", saved)
    for i in range(3):  # still down after the restart: nothing new
        fresh.observe(f"m{i:02d}", ok=False, now=2000)
    assert deliver(fresh, 2100) == []
    fresh.observe("m01", ok=True, now=2200)
    notes = fresh.due(2200)
    assert notes == [HealthNotice("source_down", "resolved", "ch", 1000, at=2200)]


def test_an_outage_forming_holds_the_first_errors_until_the_group_is_complete() -> None:
    """Defaults: error_runs 2 at a 10-minute interval. The first metric is failing (two runs)
    ten minutes in, while the others have failed once: that is an outage forming, not a
    lone metric, so no ERROR goes out before the SOURCE DOWN."""
    o = tracker(5, error_runs=2)
    step = 600
    for run in range(2):
        for i in range(5):  # each metric at its own offset within the interval
            t = 1000 + run * step + 60 * i
            o.observe(f"m{i:02d}", ok=False, now=t, error="connection refused")
            expected = [("source_down", "firing", "ch")] if (run, i) == (1, 2) else []
            assert deliver(o, t) == expected, (run, i)
    assert deliver(o, 1000 + 2 * step) == []
    # A forming outage that does not materialise releases the held ERROR.
    o2 = tracker(5, error_runs=2)
    for i in range(5):
        o2.observe(f"m{i:02d}", ok=False, now=1000 + 60 * i)
    o2.observe("m00", ok=False, now=1600)
    assert deliver(o2, 1600) == []  # the others have failed once: held
    for i in range(1, 5):
        o2.observe(f"m{i:02d}", ok=True, now=1600 + 60 * i)
    assert deliver(o2, 1900) == [("error", "firing", "m00")]
