"""The period grid, the scheduler trigger and row -> point conversion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from detectkd.collectors.base import Window
from detectkd.collectors.points import SEVERAL_ROWS, PointSpec, rows_to_points
from detectkd.errors import CollectError
from detectkd.runtime.scheduler import GridTrigger, stable_offset
from detectkd.timegrid import Grid

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def ts(text: str, tz: ZoneInfo = UTC_ZONE) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=tz).timestamp())


def test_grid_floor_and_steps_for_sub_day_intervals() -> None:
    g = Grid(timedelta(minutes=10))
    assert g.floor(ts("2026-11-20 10:07:31")) == ts("2026-11-20 10:00:00")
    assert g.next(ts("2026-11-20 10:00:00")) == ts("2026-11-20 10:10:00")
    assert g.periods(ts("2026-11-20 10:00:00"), ts("2026-11-20 10:30:00")) == [
        ts("2026-11-20 10:00:00"),
        ts("2026-11-20 10:10:00"),
        ts("2026-11-20 10:20:00"),
    ]


def test_daily_grid_follows_local_midnight_across_dst() -> None:
    g = Grid(timedelta(days=1), BERLIN)
    start = g.floor(ts("2026-10-25 12:00:00", BERLIN))  # DST ends that night in Berlin
    assert start == ts("2026-10-25 00:00:00", BERLIN)
    assert g.next(start) - start == 25 * 3600
    assert g.prev(start) == ts("2026-10-24 00:00:00", BERLIN)


def test_trigger_fires_at_period_end_plus_delay_plus_offset() -> None:
    g = Grid(timedelta(minutes=10))
    trig = GridTrigger(g, timedelta(minutes=2), 3.5)
    now = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    first = trig.get_next_fire_time(None, now)
    assert first == datetime(2026, 11, 20, 10, 12, 3, 500000, tzinfo=UTC)
    assert trig.get_next_fire_time(first, now) == first + timedelta(minutes=10)
    # A run at its scheduled time derives the period that ended `delay` earlier.
    assert trig.latest_at_or_before(first.timestamp() + 1) == first.timestamp()


def test_offsets_are_stable_spread_and_inside_the_period() -> None:
    offsets = {stable_offset(f"metric_{i}", timedelta(seconds=60)) for i in range(1000)}
    assert len(offsets) > 990
    assert all(0 <= o < 30 for o in offsets)
    assert stable_offset("x", timedelta(seconds=10)) < 5
    assert stable_offset("x", timedelta(seconds=60)) == stable_offset("x", timedelta(seconds=60))


SPEC = PointSpec("period_time", "value", ("hour",), ("country",))


def window() -> Window:
    return Window(ts("2026-11-20 10:00:00"), ts("2026-11-20 10:30:00"), timedelta(minutes=10), UTC_ZONE)


def test_rows_become_typed_points_per_series_and_period() -> None:
    rows: list[dict[str, object]] = [
        {"period_time": "2026-11-20 10:00:00", "country": "DE", "value": Decimal("5.5"), "hour": 10},
        {"period_time": datetime(2026, 11, 20, 10, 13), "country": "FR", "value": 7, "hour": 10},
        {"period_time": "2026-11-20T10:20:00Z", "country": "DE", "value": None, "hour": 10},
        {"period_time": "2026-11-20 10:20:00", "country": "FR", "value": float("nan"), "hour": 10},
    ]
    conv = rows_to_points(rows, SPEC, window(), Grid(timedelta(minutes=10)))
    got = [(p.series, p.period - ts("2026-11-20 10:00:00"), p.value) for p in conv.points]
    assert got == [
        ("country=DE", 0, 5.5),
        ("country=FR", 600, 7.0),
        ("country=DE", 1200, None),
        ("country=FR", 1200, None),
    ]
    assert conv.points[0].context == {"hour": 10}


def test_rows_outside_the_window_are_dropped_with_a_warning() -> None:
    rows = [{"period_time": "2026-11-20 09:50:00", "country": "DE", "value": 1}]
    conv = rows_to_points(rows, SPEC, window(), Grid(timedelta(minutes=10)))
    assert conv.points == [] and "outside" in conv.warnings[0]


def test_duplicate_rows_keep_the_last_with_a_warning() -> None:
    rows = [
        {"period_time": "2026-11-20 10:00:00", "country": "DE", "value": 1},
        {"period_time": "2026-11-20 10:00:00", "country": "DE", "value": 2},
    ]
    conv = rows_to_points(rows, SPEC, window(), Grid(timedelta(minutes=10)))
    assert [p.value for p in conv.points] == [2.0] and conv.warnings[0].startswith(SEVERAL_ROWS)


def test_off_grid_rows_belong_to_the_period_that_holds_them() -> None:
    """14:27 on a 10-minute grid is the 14:20 period; :53 seconds too; two rows in one
    period keep the last and the warning states the rule."""
    rows = [
        {"period_time": "2026-11-20 10:03:53", "country": "DE", "value": 1},
        {"period_time": "2026-11-20 10:17:00", "country": "DE", "value": 2},
        {"period_time": "2026-11-20 10:19:59", "country": "DE", "value": 3},
    ]
    conv = rows_to_points(rows, SPEC, window(), Grid(timedelta(minutes=10)))
    assert [(p.period, p.value) for p in conv.points] == [
        (ts("2026-11-20 10:00:00"), 1.0),
        (ts("2026-11-20 10:10:00"), 3.0),
    ]
    assert len(conv.warnings) == 1 and "[t, t + 10m)" in conv.warnings[0]


def test_no_timestamp_column_means_the_newest_requested_period() -> None:
    spec = PointSpec("period_time", "value", (), ())
    conv = rows_to_points([{"value": 3}], spec, window(), Grid(timedelta(minutes=10)))
    assert conv.points[0].period == ts("2026-11-20 10:20:00")


@pytest.mark.parametrize(
    ("value", "message"),
    [("oops", "holds text, not a number \\(4 characters\\)"), (True, "boolean"), ({"a": 1}, "holds dict")],
)
def test_garbage_in_the_value_column_is_a_clear_error(value: object, message: str) -> None:
    spec = PointSpec("period_time", "value", (), ())
    with pytest.raises(CollectError, match=message):
        rows_to_points([{"value": value}], spec, window(), Grid(timedelta(minutes=10)))


def test_missing_value_column_lists_the_columns() -> None:
    spec = PointSpec("period_time", "value", (), ())
    with pytest.raises(CollectError, match="no value column 'value' \\(columns: cnt\\)"):
        rows_to_points([{"cnt": 1}], spec, window(), Grid(timedelta(minutes=10)))


def test_naive_timestamps_are_read_in_the_metric_timezone() -> None:
    spec = PointSpec("period_time", "value", (), ())
    w = Window(
        ts("2026-11-20 10:00:00", BERLIN), ts("2026-11-20 11:00:00", BERLIN), timedelta(hours=1), BERLIN
    )
    conv = rows_to_points(
        [{"period_time": "2026-11-20 10:00:00", "value": 1}], spec, w, Grid(timedelta(hours=1), BERLIN)
    )
    assert conv.points[0].period == ts("2026-11-20 09:00:00")  # 10:00 Berlin = 09:00 UTC
    assert w.template_vars()["period_start"] == "2026-11-20 10:00:00"


def test_single_period_queries_attribute_any_label_to_their_period() -> None:
    spec = PointSpec("period_time", "value", (), ())
    w = Window(ts("2026-11-20 10:00:00"), ts("2026-11-20 10:10:00"), timedelta(minutes=10), UTC_ZONE)
    end_label = [{"period_time": "2026-11-20 10:10:00", "value": 5}]  # DetectK: period_start + interval
    now_label = [{"period_time": "2030-01-01 00:00:00", "value": 6}]  # DetectK: now() AS timestamp
    for rows in (end_label, now_label):
        conv = rows_to_points(rows, spec, w, Grid(timedelta(minutes=10)), single=True)
        assert [p.period for p in conv.points] == [w.start] and conv.warnings == []


@pytest.mark.parametrize("interval_s", [1, 2, 10, 60, 600, 86400])
def test_trigger_fire_times_strictly_increase_one_period_apart(interval_s: int) -> None:
    # Regression: float rounding once returned the previous fire time again,
    # which made APScheduler loop forever.
    for i in range(200):
        name = f"metric_{i}"
        trig = GridTrigger(
            Grid(timedelta(seconds=interval_s)),
            timedelta(0),
            stable_offset(name, timedelta(seconds=interval_s)),
        )
        now = datetime(2026, 11, 23, 3, 0, 0, 123456, tzinfo=UTC) + timedelta(seconds=i * 0.37)
        fire = trig.get_next_fire_time(None, now)
        assert fire is not None and fire >= now
        for _ in range(20):
            nxt = trig.get_next_fire_time(fire, now)
            assert nxt is not None
            assert abs((nxt - fire).total_seconds() - interval_s) < 0.002
            fire = nxt


@pytest.mark.parametrize(
    "bad",
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        1e300,
        "NaN",
        "inf",
        "1e300",
        "9999-12-31 23:00:00",
        datetime(1, 1, 1),
        -1e12,
    ],
)
def test_a_row_without_a_usable_time_is_dropped_counted_and_named(bad: object) -> None:
    rows: list[dict[str, object]] = [
        {"period_time": "2026-11-20 10:00:00", "country": "DE", "value": 1},
        {"period_time": bad, "country": "DE", "value": 2},
        {"period_time": "2026-11-20 10:10:00", "country": "DE", "value": 3},
    ]
    conv = rows_to_points(rows, SPEC, window(), Grid(timedelta(minutes=10)))
    assert [p.value for p in conv.points] == [1.0, 3.0] and conv.bad_times == 1
    assert len(conv.warnings) == 1 and conv.warnings[0].startswith("dropped 1 row(s) whose 'period_time'")
    assert "first: row 2: " in conv.warnings[0]


def test_errors_about_a_cell_do_not_quote_it() -> None:
    """A cell may be a fragment of a file or of an internal answer: errors give its size only."""
    spec = PointSpec("period_time", "value", (), ())
    secret = "internal-answer-7731 <html>admin</html>"
    for row in ({"value": secret}, {"period_time": secret, "value": 1}):
        with pytest.raises(CollectError) as err:
            rows_to_points([row], spec, window(), Grid(timedelta(minutes=10)))
        assert "internal" not in str(err.value) and "39 characters" in str(err.value)
