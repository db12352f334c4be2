"""The pure half of the `prometheus` collector: request planning on the period grid, and a
query_range answer turned into rows and points (labels, gaps, NaN, errors, limits)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from detectkd.collectors.base import Window
from detectkd.collectors.points import PointSpec, rows_to_points
from detectkd.collectors.promapi import LABELS, MAX_STEPS, Run, plan, to_rows
from detectkd.errors import CollectError
from detectkd.timegrid import Grid

UTC = ZoneInfo("UTC")
HOUR = dt.timedelta(hours=1)
T0 = 1_795_000_000 // 3600 * 3600
AUTO = PointSpec("period_time", "value", (), (LABELS,))


def answer(*series: tuple[dict[str, str], list[tuple[int, str]]]) -> dict[str, Any]:
    result = [{"metric": m, "values": [[t, v] for t, v in values]} for m, values in series]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def rows(document: Any, window: Window, max_samples: int = 1000) -> list[dict[str, Any]]:
    _, period_of = plan(window)
    return [dict(r) for r in to_rows(document, period_of, "period_time", "value", max_samples)]


def test_a_window_is_one_request_evaluated_at_each_periods_end() -> None:
    runs, period_of = plan(Window(T0, T0 + 3 * 3600, HOUR, UTC))
    assert runs == [Run(T0 + 3600, T0 + 3 * 3600, 3600)]
    assert period_of == {T0 + 3600: T0, T0 + 7200: T0 + 3600, T0 + 10800: T0 + 7200}


def test_long_windows_are_split_below_prometheus_point_limit() -> None:
    runs, _ = plan(Window(T0, T0 + (2 * MAX_STEPS + 5) * 60, dt.timedelta(minutes=1), UTC))
    assert [(r.end - r.start) // r.step + 1 for r in runs] == [MAX_STEPS, MAX_STEPS, 5]
    assert runs[1].start == runs[0].end + 60


def test_daily_periods_break_at_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = int(dt.datetime(2026, 3, 27, tzinfo=berlin).timestamp())
    finish = int(dt.datetime(2026, 4, 1, tzinfo=berlin).timestamp())
    runs, period_of = plan(Window(start, finish, dt.timedelta(days=1), berlin))
    # Midnight of the 30th is 23 hours after midnight of the 29th (clocks go forward).
    assert [r.step for r in runs] == [86400, 86400]
    assert sum((r.end - r.start) // r.step + 1 for r in runs) == len(period_of) == 5
    assert dt.datetime.fromtimestamp(runs[1].start, berlin).hour == 0


def test_labels_make_the_key_sorted_without_the_metric_name() -> None:
    w = Window(T0, T0 + 7200, HOUR, UTC)
    doc = answer(
        ({"__name__": "orders", "region": "eu", "job": "shop"}, [(T0 + 3600, "5"), (T0 + 7200, "6")]),
        ({"__name__": "orders", "region": "us", "job": "shop"}, [(T0 + 7200, "7")]),
    )
    got = rows_to_points(rows(doc, w), AUTO, w, Grid(HOUR, UTC)).points
    assert [(p.series, p.period, p.value) for p in got] == [
        ("job=shop,region=eu", T0, 5.0),
        ("job=shop,region=eu", T0 + 3600, 6.0),
        ("job=shop,region=us", T0 + 3600, 7.0),  # no sample at T0 + 3600: no point (a gap)
    ]


def test_the_metric_name_stays_when_it_tells_series_apart() -> None:
    w = Window(T0, T0 + 3600, HOUR, UTC)
    doc = answer(
        ({"__name__": "a", "job": "x"}, [(T0 + 3600, "1")]),
        ({"__name__": "b", "job": "x"}, [(T0 + 3600, "2")]),
    )
    got = rows_to_points(rows(doc, w), AUTO, w, Grid(HOUR, UTC)).points
    assert {p.series for p in got} == {"__name__=a,job=x", "__name__=b,job=x"}


def test_nan_and_infinities_are_missing_values() -> None:
    w = Window(T0, T0 + 3 * 3600, HOUR, UTC)
    doc = answer(({}, [(T0 + 3600, "NaN"), (T0 + 7200, "+Inf"), (T0 + 10800, "-Inf")]))
    got = rows_to_points(rows(doc, w), AUTO, w, Grid(HOUR, UTC)).points
    assert [(p.series, p.value) for p in got] == [("", None)] * 3


def test_a_label_a_series_lacks_is_empty_so_series_columns_can_name_it() -> None:
    w = Window(T0, T0 + 3600, HOUR, UTC)
    doc = answer(
        ({"region": "eu"}, [(T0 + 3600, "1")]), ({"region": "us", "tier": "gold"}, [(T0 + 3600, "2")])
    )
    got = rows(doc, w)
    assert [(r["region"], r["tier"]) for r in got] == [("eu", ""), ("us", "gold")]
    named = PointSpec("period_time", "value", (), ("tier", "region"))
    assert {p.series for p in rows_to_points(got, named, w, Grid(HOUR, UTC)).points} == {
        "tier=,region=eu",
        "tier=gold,region=us",
    }


def test_samples_at_instants_not_asked_for_are_an_error_not_a_silent_gap() -> None:
    w = Window(T0, T0 + 3600, HOUR, UTC)
    with pytest.raises(CollectError, match=f"a sample at {T0 + 1800}, an instant not asked for"):
        rows(answer(({}, [(T0 + 1800, "1")])), w)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"status": "error", "errorType": "bad_data", "error": "parse error: unexpected end"},
         r"query failed \(bad_data\): parse error: unexpected end"),
        ({"status": "error", "errorType": "execution", "error": "token=abcdef123456 refused"},
         r"query failed \(execution\): token=\*\*\* refused"),
        ({"status": "success", "data": {"resultType": "vector", "result": []}}, "resultType is 'vector', not 'matrix'"),
        ({"status": "success", "data": {"resultType": "matrix", "result": {}}}, "`result` is not a list"),
        ({"data": {}}, "not a Prometheus API response"),
        ([1, 2], "not a Prometheus API response"),
        ({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "histograms": [[1, {}]]}]}}, "native histograms"),
        (answer(({}, [(T0 + 3600, "many")])), "not a number: 'many'"),
        ({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [["Inf", "1"]]}]}},
         "sample time is not a number: 'Inf'"),
    ],
)  # fmt: skip
def test_bad_answers_are_clear_errors(document: Any, message: str) -> None:
    with pytest.raises(CollectError, match=message):
        rows(document, Window(T0, T0 + 3600, HOUR, UTC))


def test_too_many_samples_are_refused_before_any_row_is_built() -> None:
    w = Window(T0, T0 + 3600, HOUR, UTC)
    doc = answer(*[({"i": str(i)}, [(T0 + 3600, "1")]) for i in range(11)])
    with pytest.raises(CollectError, match=r"more than 10 samples \(11 series\).*raise max_samples"):
        rows(doc, w, max_samples=10)
    assert len(rows(doc, w, max_samples=11)) == 11


def test_a_row_is_a_mapping_view_of_its_series() -> None:
    w = Window(T0, T0 + 3600, HOUR, UTC)
    (row,) = to_rows(answer(({"region": "eu"}, [(T0 + 3600, "2")])), plan(w)[1], "period_time", "value", 10)
    assert dict(row) == {"region": "eu", LABELS: {"region": "eu"}, "period_time": T0, "value": 2.0}
    assert "region" in row and "tier" not in row and row.get("tier", "-") == "-" and len(row) == 4
    with pytest.raises(KeyError):
        row["tier"]


def test_rows_share_their_series_labels() -> None:
    """A row holds its period and value; the labels live once per series (a million samples
    of ten-label series were ~300 MB of dicts, now ~90 MB)."""
    import tracemalloc

    w = Window(T0, T0 + 1000 * 3600, HOUR, UTC)
    labels = {f"label{i}": f"value-{i}" for i in range(10)}
    doc = answer(
        *[({**labels, "i": str(i)}, [(T0 + 3600 * (k + 1), "1.5") for k in range(1000)]) for i in range(10)]
    )
    _, period_of = plan(w)
    tracemalloc.start()
    try:
        rows = to_rows(doc, period_of, "period_time", "value", 100_000)
        used = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(rows) == 10_000
    assert used < 1_500_000, f"{used / len(rows):.0f} bytes a row"
