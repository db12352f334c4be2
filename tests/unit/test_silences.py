"""Silence matching and recurring windows across DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from detectkd.alerting.silences import Labels, Matcher, Silence, SilenceError, make_window, new_silence


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_matchers_by_metric_tag_and_series_labels() -> None:
    labels: Labels = {"metric": "orders", "tag": ("shop", "revenue"), "region": "eu-west", "source": "pg"}
    assert Matcher.parse("metric=orders").matches(labels)
    assert Matcher.parse("tag=revenue").matches(labels)  # any of the tags
    assert not Matcher.parse("tag!=shop").matches(labels)
    assert Matcher.parse("region=~eu-.*").matches(labels)
    assert not Matcher.parse("region!~eu-.*").matches(labels)
    assert Matcher.parse('host=""').matches(labels)  # an absent label is ""
    with pytest.raises(SilenceError, match="bad matcher"):
        Matcher.parse("just text")
    with pytest.raises(SilenceError, match="bad regex"):
        Matcher.parse("region=~(")


def test_one_off_silence_has_a_start_and_an_end() -> None:
    s = new_silence(["metric=orders"], 1000, 2000)
    assert not s.active(999) and s.active(1000) and s.active(1999) and not s.active(2000)
    with pytest.raises(SilenceError, match="needs an end"):
        new_silence(["metric=orders"], 1000, None)
    with pytest.raises(SilenceError, match="ends before"):
        new_silence(["metric=orders"], 1000, 900)
    assert Silence.from_json(s.to_json()) == s


NIGHTLY = make_window(["mon-sun"], ["01:00-04:00"], "Europe/Berlin")


@pytest.mark.parametrize(
    ("instant", "active"),
    [
        # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST.
        ("2026-03-28T23:30:00", False),  # 00:30 CET
        ("2026-03-29T00:30:00", True),  # 01:30 CET
        ("2026-03-29T01:30:00", True),  # 03:30 CEST
        ("2026-03-29T02:30:00", False),  # 04:30 CEST (a fixed UTC+1 window would still be open)
        # 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET; 02:xx happens twice.
        ("2026-10-24T23:30:00", True),  # 01:30 CEST
        ("2026-10-25T00:30:00", True),  # 02:30 CEST
        ("2026-10-25T01:30:00", True),  # 02:30 CET
        ("2026-10-25T02:30:00", True),  # 03:30 CET
        ("2026-10-25T03:30:00", False),  # 04:30 CET (a fixed UTC+2 window would have closed at 02:00 UTC)
        ("2026-10-25T02:10:00", True),  # 03:10 CET
    ],
)
def test_a_local_window_follows_dst(instant: str, active: bool) -> None:
    assert NIGHTLY.active(utc(instant)) is active


def test_weekdays_and_windows_across_midnight() -> None:
    w = make_window(["fri"], ["22:00-02:00"], "UTC")
    assert w.active(utc("2026-11-27T23:00:00"))  # Friday 23:00
    assert w.active(utc("2026-11-28T01:00:00"))  # Saturday 01:00: Friday's window
    assert not w.active(utc("2026-11-28T23:00:00"))  # Saturday 23:00
    assert not w.active(utc("2026-11-27T01:00:00"))  # Friday 01:00: Thursday had no window
    whole_days = make_window(["sat,sun"], [], "UTC")
    assert whole_days.active(utc("2026-11-28T12:00:00")) and not whole_days.active(utc("2026-11-30T12:00:00"))
    with pytest.raises(SilenceError, match="timezone"):
        make_window(["mon"], ["01:00-02:00"], "Mars/Olympus")
    with pytest.raises(SilenceError, match="time range"):
        make_window(["mon"], ["1am-2am"], "UTC")


def test_recurring_silence_round_trips_and_respects_its_end_and_expiry() -> None:
    import dataclasses

    s = new_silence(["tag=shop"], utc("2026-03-01T00:00:00"), utc("2026-04-01T00:00:00"), window=NIGHTLY)
    assert Silence.from_json(s.to_json()) == s
    assert s.active(utc("2026-03-29T00:30:00")) and not s.active(utc("2026-04-01T00:30:00"))
    gone = dataclasses.replace(s, expired_at=utc("2026-03-10T00:00:00"))
    assert not gone.active(utc("2026-03-29T00:30:00")) and not gone.current(utc("2026-03-29T00:30:00"))
