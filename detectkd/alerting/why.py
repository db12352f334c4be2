"""Why an alert fired, in words: which baseline the judging detector compared the value with
("the median of the last 30 days"), from its type and parameters. The message puts the
expected value after it ("Baseline: the median of the last 30 days: 1,240"). Then the
FIRING's "Why:" line (what `runtime.explain` measures, said here): the change ("value 820,
34 % below expected 1,240"), the rarity ("beyond 99.7 % of its deviations in the last 14
days") and the precedent ("last similar: 2026-11-02 14:00, marked real incident")."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
            return (
                f"the {(params.get('method', 'mad') == 'zscore' and 'mean') or 'median'} of this "
                f"{_season(params.get('season', 'hour_of_day'))} over the last {w}"
            )
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


# -- the value, how rare, and the last similar episode (the FIRING's "Why:" line) ---------------

LABEL_WORDS = {"incident": "marked real incident", "false_alarm": "marked false alarm"}


def amount(x: float) -> str:
    """A value as people read it: whole with thousands separators from 100 on, else 4 digits."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.4g}"


def change(value: float | None, expected: float | None) -> str | None:
    """ "value 820, 34 % below expected 1,240" (None: no value or no expected value)."""
    if value is None or expected is None or not (math.isfinite(value) and math.isfinite(expected)):
        return None
    if value == expected:
        return f"value {amount(value)}, as expected"
    side = "above" if value > expected else "below"
    if expected == 0:
        return f"value {amount(value)}, {side} expected 0"
    pct = abs(value - expected) / abs(expected) * 100.0
    said = f"{pct:,.0f}" if pct >= 10 else f"{pct:.1f}"
    return f"value {amount(value)}, {said} % {side} expected {amount(expected)}"


def rarity(below: int, total: int, days: int) -> tuple[str, float] | None:
    """How rare a deviation is among `total` earlier scores of its series over `days` days,
    `below` of them smaller: ("beyond 99.7 % of its deviations in the last 14 days", 99.7).
    The percentage is rounded down (never claims more than the scores show)."""
    if total <= 0 or days < 1 or not 0 <= below <= total:
        return None
    span = "the last day" if days == 1 else f"the last {days} days"
    if below == total:
        return f"larger than any of its deviations in {span}", 100.0
    pct = math.floor(below * 1000 / total) / 10
    return f"beyond {pct:g} % of its deviations in {span}", pct


def precedent(started_at: int, label: str | None, tz: ZoneInfo, known: bool = True) -> str:
    """ "last similar: 2026-11-02 14:00, marked real incident" (or ", not labelled"; nothing
    about labels when they are not `known`, as in a backtest)."""
    when = datetime.fromtimestamp(started_at, tz).strftime("%Y-%m-%d %H:%M")
    if not known:
        return f"last similar: {when}"
    return f"last similar: {when}, {LABEL_WORDS.get(label or '', 'not labelled')}"
