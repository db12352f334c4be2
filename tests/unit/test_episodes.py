"""Alert episodes from outbox rows, when a silence was active over a range, and the overview's lag."""

from __future__ import annotations

from dataclasses import replace

from detectkd.alerting.alert import Alert
from detectkd.alerting.episodes import episodes
from detectkd.alerting.silences import active_spans, make_window, new_silence

BASE = Alert("m", "host=a", {}, "firing", 1200, 600, 950.0, 100.0, 90.0, 110.0, 9.0, "up", "mad", 600)


def test_firing_and_resolved_rows_make_one_closed_episode_per_series() -> None:
    rows = [
        (BASE, "sent"),
        (replace(BASE, repeat=1, period=4800), "sent"),  # a repeat: counted, opens nothing
        (replace(BASE, resent=5400), "pending"),  # an Alertmanager re-send: the same
        (replace(BASE, status="resolved", period=6000), "dead"),
        (replace(BASE, series="host=b", started_at=3000, period=3000), "sent"),
    ]
    a, b = episodes(rows)[1], episodes(rows)[0]  # newest first: host=b started later
    assert (a.series, a.started_at, a.fired_at, a.resolved_at, a.headline) == (
        "host=a",
        600,
        1200,
        6000,
        "FIRING",
    )
    assert a.deliveries == {"sent": 2, "pending": 1, "dead": 1} and (a.value, a.detector) == (950.0, "mad")
    assert (b.series, b.resolved_at) == ("host=b", None)


def test_a_series_alerting_now_without_a_notification_is_an_open_episode() -> None:
    (silent, notified) = episodes([(BASE, "sent")], [("host=a", "anomaly", 600), ("host=c", "nodata", 900)])[
        :2
    ]
    assert (silent.series, silent.kind, silent.fired_at, silent.headline) == (
        "host=c",
        "nodata",
        None,
        "NO DATA",
    )
    assert notified.fired_at == 1200 and len(episodes([(BASE, "sent")], [("host=a", "anomaly", 600)])) == 1


def test_silence_spans_follow_its_end_expiry_and_window() -> None:
    once = new_silence(["metric=m"], 1000.0, 5000.0, "deploy", "ops")
    assert active_spans(once, 0, 10_000, 100) == [(1000.0, 5000.0)]
    assert active_spans(replace(once, expired_at=2000.0), 0, 10_000, 100) == [(1000.0, 2000.0)]
    assert active_spans(once, 6000, 9000, 100) == []
    nightly = new_silence(["metric=m"], 0.0, None, "nightly", "ops", make_window([], ["01:00-02:00"], "UTC"))
    day = 86400
    assert active_spans(nightly, 0, 2 * day, 600) == [(3600.0, 7200.0), (day + 3600.0, day + 7200.0)]


def test_the_overview_lag_is_the_worst_of_this_minute_and_the_last() -> None:
    from detectkd.telemetry import RecentMax

    lag = RecentMax()
    lag.observe(0.5, 60.0)
    lag.observe(2.0, 70.0)
    lag.observe(0.1, 125.0)  # the next minute: the last one's 2.0 still counts
    assert (lag.value(125.0), lag.value(179.0), lag.value(185.0)) == (2.0, 2.0, 0.1)
    assert lag.value(300.0) == 0.0  # minutes without runs: nothing is late
    lag.observe(0.3, 400.0)  # after a gap, the old minute is forgotten
    assert lag.value(401.0) == 0.3
