"""Rows typed without a Python loop per row (`collectors.fastrows`, issue 28) give the same
points, warnings and errors as typed one by one: random results of the shape it takes, and
each thing that sends a result back to the row-by-row path."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detectkd.collectors import fastrows
from detectkd.collectors.base import Window
from detectkd.collectors.points import Conversion, PointSpec, rows_to_points
from detectkd.errors import CollectError
from detectkd.timegrid import Grid

SPEC = PointSpec("period_time", "value", (), ())
T0 = 1_796_000_000 - 1_796_000_000 % 3600


def stamp(t: float, sep: str = " ") -> str:
    return datetime.fromtimestamp(t, UTC).strftime(f"%Y-%m-%d{sep}%H:%M:%S")


def both(
    rows: list[dict[str, Any]], spec: PointSpec, window: Window, grid: Grid, single: bool = False
) -> tuple[Conversion, Conversion, bool]:
    """(one by one, as it comes, whether the vectorised path took it)."""
    slow_min = 10**9
    saved = fastrows.MIN_ROWS
    try:
        fastrows.MIN_ROWS = slow_min
        slow = rows_to_points(rows, spec, window, grid, single)
    finally:
        fastrows.MIN_ROWS = saved
    fast = rows_to_points(rows, spec, window, grid, single)
    took = (
        not spec.series_columns
        and not grid.days
        and fastrows.typed(
            rows,
            spec.value_column,
            spec.timestamp_column,
            window,
            grid.step,
            grid.prev(window.finish),
            single,
        )
        is not None
    )
    return slow, fast, took


def value(rng: random.Random) -> Any:
    return rng.choice(
        [rng.uniform(-1e6, 1e6), rng.randint(-(10**12), 10**12), None, math.nan, math.inf, 0, 1.5]
    )


@pytest.mark.parametrize("seed", range(40))
def test_random_results_come_out_as_typed_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    step = rng.choice([10, 60, 300, 3600])
    tz = ZoneInfo(rng.choice(["UTC", "Etc/GMT-3", "Etc/GMT+5", "Etc/UTC"]))
    grid = Grid(timedelta(seconds=step), tz)
    window = Window(T0, T0 + step * rng.randint(1, 40), timedelta(seconds=step), tz)
    single = rng.random() < 0.3
    context = ("hour",) if rng.random() < 0.3 else ()
    spec = PointSpec("period_time", "value", context, ())
    offset = int(tz.utcoffset(datetime(2000, 1, 1)).total_seconds())  # type: ignore[union-attr]
    rows = []
    for _ in range(rng.randint(8, 300)):
        t = rng.randint(window.start - 3 * step, window.finish + 3 * step)  # some outside the window
        row: dict[str, Any] = {"period_time": stamp(t + offset, rng.choice(" T")), "value": value(rng)}
        if context and rng.random() < 0.8:
            row["hour"] = rng.randint(0, 23)
        rows.append(row)
    slow, fast, took = both(rows, spec, window, grid, single)
    assert took
    assert fast.points == slow.points
    assert fast.warnings == slow.warnings
    assert fast.bad_times == slow.bad_times


@pytest.mark.parametrize("seed", range(30))
def test_epoch_numbers_come_out_as_typed_one_by_one(seed: int) -> None:
    """Times as epoch numbers (a CSV file's, parsed once by its collector; a source's ints):
    seconds or milliseconds, whole or not, in any zone (a number is no wall-clock time)."""
    rng = random.Random(1000 + seed)
    step = rng.choice([10, 60, 300, 3600])
    tz = ZoneInfo(rng.choice(["UTC", "Europe/Berlin", "America/New_York", "Etc/GMT+5"]))
    grid = Grid(timedelta(seconds=step), tz)
    window = Window(T0, T0 + step * rng.randint(1, 40), timedelta(seconds=step), tz)
    single = rng.random() < 0.3
    millis = rng.random() < 0.3
    rows = []
    for _ in range(rng.randint(8, 300)):
        t: float = rng.randint(window.start - 3 * step, window.finish + 3 * step)
        if rng.random() < 0.5:
            t += rng.random()  # a fraction of a second: floored as `Grid.floor` does
        rows.append({"period_time": int(t * 1000) if millis else t, "value": value(rng)})
    slow, fast, took = both(rows, SPEC, window, grid, single)
    assert took
    assert fast.points == slow.points
    assert fast.warnings == slow.warnings


def rows_of(n: int, step: int = 10) -> list[dict[str, Any]]:
    return [{"period_time": stamp(T0 + i * step), "value": float(i)} for i in range(n)]


def epoch_rows(bad: Any, kind: type = int) -> list[dict[str, Any]]:
    """30 rows with epoch-number times, the fourth's time `bad`."""
    rows = [{**r, "period_time": kind(T0 + 10 * i)} for i, r in enumerate(rows_of(30))]
    rows[3] = {**rows[3], "period_time": bad}
    return rows


GRID = Grid(timedelta(minutes=1), "UTC")
WINDOW = Window(T0, T0 + 3600, timedelta(minutes=1), ZoneInfo("UTC"))


def changed(i: int, **cells: Any) -> list[dict[str, Any]]:
    rows = rows_of(30)
    rows[i] = {**rows[i], **cells}
    return rows


@pytest.mark.parametrize(
    "rows",
    [
        changed(3, period_time="2026-13-01 00:00:00"),  # no month 13: an error, one by one
        changed(3, period_time="2026-02-30 00:00:00"),
        changed(3, period_time="2026-12-07 24:00:00"),
        changed(3, period_time="1890-01-01 00:00:00"),  # before 1900: dropped, counted
        changed(3, period_time="2026-12-07 10:00+01"),  # 19 characters, an offset: read by Python
        changed(3, period_time=" 2026-12-07 10:00:0"),
        changed(3, period_time="2026-12-07x10:00:00"),
        changed(3, period_time="２０２６-12-07 10:00:00"),  # (wide digits)
        changed(3, period_time=None),  # the newest period
        changed(3, period_time=1_796_000_000),  # a number among texts
        epoch_rows(math.nan, float),  # a NaN time
        epoch_rows(True),  # a bool
        epoch_rows(10**400),  # an int no float holds
        epoch_rows(1e15),  # milliseconds of the year 33658
        epoch_rows(np.int64(T0 + 30)),  # a numpy number: not an int (an error, one by one)
        epoch_rows(Decimal(T0 + 30)),  # (an error too)
        changed(3, value="12"),  # text: an error
        changed(3, value=True),
        changed(3, value=10**400),
        [{"period_time": r["period_time"]} if i == 5 else r for i, r in enumerate(rows_of(30))],  # no value
    ],
)
def test_other_results_are_typed_one_by_one(rows: list[dict[str, Any]]) -> None:
    assert fastrows.typed(rows, "value", "period_time", WINDOW, 60, GRID.prev(WINDOW.finish), False) is None
    try:
        slow = rows_to_points(rows, SPEC, WINDOW, GRID)
    except (CollectError, OverflowError) as exc:
        with pytest.raises(type(exc), match="."):
            rows_to_points(rows, SPEC, WINDOW, GRID)
    else:
        assert rows_to_points(rows, SPEC, WINDOW, GRID) == slow


def test_a_zone_with_daylight_saving_and_a_daily_grid_are_typed_one_by_one() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    window = Window(T0, T0 + 3600, timedelta(minutes=1), berlin)
    assert fastrows.typed(rows_of(30), "value", "period_time", window, 60, T0 + 3540, False) is None
    daily = Grid(timedelta(days=1), "UTC")
    day = Window(T0 - T0 % 86400, T0 - T0 % 86400 + 86400, timedelta(days=1), ZoneInfo("UTC"))
    slow, fast, took = both(rows_of(30), SPEC, day, daily)
    assert not took and fast == slow


def test_a_long_result_is_typed_vectorised() -> None:
    rows = rows_of(180)
    conv = rows_to_points(rows, SPEC, WINDOW, GRID)
    assert [p.period for p in conv.points] == [T0 + 60 * k for k in range(30)]
    assert [p.value for p in conv.points] == [float(6 * k + 5) for k in range(30)]  # the last row counts
    assert conv.warnings and conv.warnings[0].startswith("several rows in one period: 150 row(s)")
    assert (
        fastrows.typed(rows, "value", "period_time", WINDOW, 60, GRID.prev(WINDOW.finish), False) is not None
    )
