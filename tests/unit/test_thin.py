"""What a chart keeps of a long series (the metric page and the backtest report alike)."""

from __future__ import annotations

import math

from detectkd.durations import moment_of
from detectkd.ui.thin import kept


def test_a_short_series_is_kept_whole() -> None:
    assert kept([1.0, None, 3.0], [False, False, True], limit=10) == [0, 1, 2]


def test_a_long_series_keeps_each_buckets_extremes_every_anomaly_and_its_gaps() -> None:
    values: list[float | None] = [100.0 + (i % 7) for i in range(1000)]
    values[123] = 5000.0  # a spike that is not flagged still shows
    values[456] = -50.0  # and a dip
    for i in range(600, 700):
        values[i] = None if i % 2 else math.nan  # a gap
    anomalous = [i == 801 for i in range(1000)]
    idx = kept(values, anomalous, limit=100)
    assert len(idx) <= 2 * 50 + 1 and idx == sorted(set(idx))
    assert {123, 456, 801} <= set(idx)
    assert any(600 <= i < 700 for i in idx)  # the gap stays a gap


def test_api_times_are_epoch_seconds_or_iso() -> None:
    assert (
        moment_of(1796032800) == moment_of("1796032800") == moment_of("2026-11-30T10:00:00Z") == 1796032800.0
    )
