"""The baseline in words for each detector kind (alerting.why)."""

from __future__ import annotations

from datetime import timedelta

from detectkd.alerting.why import basis


def test_each_kind_says_what_it_compared_with() -> None:
    day = timedelta(days=30)
    assert basis("mad", {"window_size": day}, 600) == "the median of the last 30d"
    seasonal = {"window_size": day, "seasonal_features": ["hour_of_day"]}
    assert basis("mad", seasonal, 600) == "the median of the last 30d at the same hour of the day"
    assert basis("zscore", {"window_size": 100}, 60) == "the mean of the last 100 points (100m)"
    assert basis("seasonal", {"window_size": timedelta(days=21), "season": "day_of_week"}, 3600) == (
        "the median of this day of the week over the last 3w"
    )
    assert str(basis("auto", {"window": 400, "cycles": 3}, 60)).startswith("the level of the last 400 points")
    assert basis("change", {"compare_to": "last_week"}, 60) == "the same period a week earlier"
    assert basis("threshold", {}, 60) == "a fixed threshold"
    assert basis("flatline", {}, 60) is None  # nothing to compare with: no line
