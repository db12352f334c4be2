"""Why an alert fired, in words: which baseline the judging detector compared the value with
("the median of the last 30 days"), from its type and parameters. The message puts the
expected value after it ("Baseline: the median of the last 30 days: 1,240")."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from detectkd.durations import format_duration

SEASONS = {
    "hour_of_day": "hour of the day",
    "day_of_week": "day of the week",
    "hour_of_week": "hour of the week",
    "day_of_month": "day of the month",
    "weekend": "weekday or weekend",
}


def _span(window: Any, step_s: int) -> str:
    if isinstance(window, timedelta):
        return format_duration(window)
    if isinstance(window, int | float) and window > 0:
        whole = timedelta(seconds=int(window) * step_s)
        return f"{int(window):,} points ({format_duration(whole)})"
    return str(window)


def _season(value: Any) -> str:
    names = value if isinstance(value, list | tuple) else [value]
    return " and ".join(SEASONS.get(str(n), str(n).replace("_", " ")) for n in names if n)


def basis(kind: str, params: Mapping[str, Any], step_s: int) -> str | None:
    """The baseline detector `kind` judges against, in words (None: nothing to say)."""
    w = _span(params.get("window_size", params.get("window")), step_s)
    seasonal = params.get("seasonal_features") or []
    same = f" at the same {_season([f if isinstance(f, str) else f.get('name', '') for f in seasonal])}"
    match kind:
        case "mad":
            return f"the median of the last {w}" + (same if seasonal else "")
        case "zscore":
            return f"the mean of the last {w}" + (same if seasonal else "")
        case "seasonal":
            return f"the {(params.get('method', 'mad') == 'zscore' and 'mean') or 'median'} of this " \
                   f"{_season(params.get('season', 'hour_of_day'))} over the last {w}"  # fmt: skip
        case "iqr":
            return f"the middle half (interquartile range) of the last {w}"
        case "forecast":
            season = params.get("season")
            cycle = f" with a {_span(season, step_s)} season" if season else ""
            return f"a Holt-Winters forecast from the last {w}{cycle}"
        case "auto":
            cycles = params.get("cycles", 3)
            level = _span(params.get("window", 400), step_s)
            if params.get("seasonal", True):
                return f"the level of the last {level} and the same time of the last {cycles} days and weeks"
            return f"the level of the last {level}"
        case "threshold":
            return "a fixed threshold"
        case "change":
            to = params.get("compare_to", "previous")
            return {"previous": "the previous period", "last_week": "the same period a week earlier"}.get(
                str(to), f"the period {to} earlier"
            )
        case _:
            return None
