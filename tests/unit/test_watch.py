"""Whether a metric judges, in words (`runtime.watch`, issue 28): per series of the newest
period judged, cold or without data, the first few named with their "until"."""

from __future__ import annotations

from detectkd.alerting.state import SeriesState, Verdict
from detectkd.collectors.points import Point
from detectkd.detectors.base import Result
from detectkd.durations import in_words as span
from detectkd.runtime.judge import PointReport
from detectkd.runtime.watch import NO_DATA, described, reason, until, watch

COLD = "cold start: fewer than 10 points"


def report(series: str, value: float | None, skipped: str | None, period: int = 3600) -> PointReport:
    r = Result("mad", value, False, 0.0, skipped=skipped)
    return PointReport(Point(series, period, value), [r], Verdict(False, r), SeriesState())


def test_a_missing_value_is_no_data_not_judged_and_older_periods_do_not_count() -> None:
    w = watch([report("", 1.0, None, period=0), report("", None, "missing value")], 3600)
    assert w is not None and not w.judging
    assert w.counts() == {"judging": 0, "cold": 0, "no_data": 1, "warming": 0, "total": 1}
    assert reason(w, described(w, lambda s: 0, 3600), "why") == NO_DATA
    assert watch([report("", 1.0, None, period=0)], 3600) is None  # no point for the newest period


def test_a_skip_that_is_no_cold_start_still_watched_the_series() -> None:
    w = watch([report("", 5.0, "excluded by the calendar")], 3600)
    assert w is not None and w.judging and reason(w, {}, "why") is None


def test_none_of_many_series_judged_names_the_first_three_by_key_and_counts_the_rest() -> None:
    reports = [report(f"s={i:02d}", 1.0, COLD) for i in range(9, -1, -1)] + [
        report("s=x", None, "missing value")
    ]
    w = watch(reports, 3600)
    assert w is not None and w.counts() == {"judging": 0, "cold": 10, "no_data": 1, "warming": 0, "total": 11}
    assert list(w.unjudged) == ["s=00", "s=01", "s=02"]
    series = described(w, lambda s: 4, 3600)
    assert series["s=00"] == f"{COLD} (4 of 10 points stored, about 6 h more at one a period)"
    line = reason(w, series, "the source has fewer points than the detectors need")
    assert line is not None
    assert line.startswith("none of its 11 series judged (10 in cold start, 1 without data): s=00: ")
    assert "; and 8 more; the source has fewer points" in line


def test_until_counts_only_what_a_reason_counts() -> None:
    assert until("cold start: too few residuals after warm-up", 3, 60) == ""
    assert until(COLD, 4, 0) == "4 of 10 points stored"  # history loading: no time at one a period
    assert until(COLD, 12, 60) == ""  # enough in the window, yet cold: a season's count, no estimate
    assert [span(s) for s in (59, 600, 7 * 3600, 3.5 * 86400)] == ["59 s", "10 min", "7 h", "3.5 d"]
