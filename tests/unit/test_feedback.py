"""Feedback labels: their JSON, their spans, and how a config's flags score against them."""

from __future__ import annotations

import pytest

from detectkd.alerting.feedback import Feedback, FeedbackError, flagged_by, make_feedback, score


def fb(period: int, until: int, label: str, series: str = "") -> Feedback:
    return Feedback("m", series, period, label, until, "ops", 1.0)


def test_a_label_round_trips_and_covers_its_span_inclusive() -> None:
    one = Feedback("m", "host=a", 600, "incident", 1800, "alice", 12.5, "db down")
    assert Feedback.from_json(one.to_json()) == one
    assert [one.covers(p) for p in (0, 600, 1200, 1800, 2400)] == [False, True, True, True, False]


def test_a_body_needs_a_known_label_and_a_sane_span() -> None:
    ok = make_feedback({"metric": "m", "period": 600, "label": "false_alarm"}, "bob", 5.0, float)
    assert (ok.series, ok.until, ok.by, ok.at) == ("", 600, "bob", 5.0)
    for body, why in (
        ({"period": 1, "label": "incident"}, "missing 'metric'"),
        ({"metric": "m", "period": 1, "label": "noise"}, "label must be one of"),
        ({"metric": "m", "period": 10, "until": 5, "label": "incident"}, "until must be after"),
    ):
        with pytest.raises(FeedbackError, match=why):
            make_feedback(body, "bob", 5.0, float)


def test_hits_and_false_alarms_are_counted_over_spans_per_series() -> None:
    flagged = flagged_by({"": [600, 3000], "host=b": [1200]})
    labels = [
        fb(0, 600, "incident"),  # flagged at its last period: a hit
        fb(1200, 1800, "incident"),  # nothing flagged inside (1200 is host=b's): missed
        fb(1200, 1200, "false_alarm", "host=b"),  # still raised
        fb(2400, 2999, "false_alarm"),  # 3000 is just after its span: gone
    ]
    s = score(labels, flagged)
    assert (s.incidents, s.hits, s.false_alarms, s.raised) == (2, 1, 2, 1)
    assert [f.period for f in s.missed] == [1200] and [f.series for f in s.still_raised] == ["host=b"]
