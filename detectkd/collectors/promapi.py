"""The pure half of the `prometheus` collector: which instants to ask for, and the answer
of `/api/v1/query_range` turned into rows.

Time: a period [t, t + interval) gets the expression's value evaluated at t + interval, its
end. That is what a range function describes (`increase(orders_total[1h])` at 13:00 counts
12:00..13:00, the way a SQL query's `period_start <= ts < period_finish` does), and it is the
newest instant that is over when the period is due. Each row is labelled with the period's
start, as SQL rows are. query_range evaluates at `start + k * step`, so the instants are
asked for in runs of equal spacing: one run for a grid in seconds, minutes or hours, a break
at each DST change for whole days in a timezone that has one, and at most `MAX_STEPS` per
request (Prometheus refuses more than 11,000 points per series).

Missing is missing, never zero: an instant where a series has no sample (no sample within
the lookback delta, 5 minutes by default, or the series marked stale after its target went
away) comes back as no value, and the series has no row for that period; a `NaN` or an
infinity (`0/0`, a ratio of two zero rates) is a row whose value is None (NULL).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from detectkd.collectors.base import Row, Window
from detectkd.collectors.points import OWN_LABELS
from detectkd.errors import CollectError
from detectkd.redact import redact_text
from detectkd.timegrid import Grid

MAX_STEPS = 10_000  # per request; Prometheus's own limit is 11,000 points per series
LABELS = OWN_LABELS  # a row's own series labels (see `detectkd.collectors.points`)
NAME = "__name__"


@dataclass(frozen=True)
class Run:
    """One query_range request: evaluation instants start, start + step, ..., end."""

    start: int
    end: int
    step: int


def plan(window: Window) -> tuple[list[Run], dict[int, int]]:
    """The requests covering `window`'s periods, and each evaluation instant's period."""
    grid = Grid(window.interval, window.tz)
    period_of = {grid.next(p): p for p in grid.periods(window.start, window.finish)}
    runs: list[Run] = []
    ends = sorted(period_of)
    i = 0
    while i < len(ends):
        j = i + 1
        step = ends[j] - ends[i] if j < len(ends) else grid.step or 86400
        while j < len(ends) and ends[j] - ends[j - 1] == step and j - i < MAX_STEPS:
            j += 1
        runs.append(Run(ends[i], ends[j - 1], step))
        i = j
    return runs, period_of


def series_label_key(labels: dict[str, str], keep_name: bool) -> dict[str, str]:
    """A series' labels in the order its key is written: sorted by name, `__name__` out
    unless it is what tells two series of the answer apart."""
    return {k: labels[k] for k in sorted(labels) if keep_name or k != NAME}


def sample_value(raw: Any) -> float | None:
    """A sample's value: Prometheus writes it as a string ("1.5", "NaN", "+Inf")."""
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise CollectError(f"a sample value is not a number: {str(raw)[:40]!r}") from None
    return number if math.isfinite(number) else None


def check_status(document: Any) -> dict[str, Any]:
    """The `data` of a successful answer, or a CollectError with the server's reason."""
    if not isinstance(document, dict) or "status" not in document:
        raise CollectError("the answer is not a Prometheus API response (no `status`)")
    if document["status"] != "success":
        kind = str(document.get("errorType") or "error")[:40]
        reason = " ".join(str(document.get("error") or "no reason given").split())
        raise CollectError(f"query failed ({kind}): {redact_text(reason)[:200]}")
    data = document.get("data")
    if not isinstance(data, dict):
        raise CollectError("the answer has no `data` object")
    return data


def to_rows(
    document: Any,
    period_of: dict[int, int],
    timestamp_column: str,
    value_column: str,
    max_samples: int,
    counted: int = 0,
) -> list[Row]:
    """The rows of one query_range answer: one per series and evaluation instant that has
    a sample. Each row carries the series' labels as columns (so `series_columns` can name
    them), under `LABELS` the labels that make its key, and the period's start and value.

    `counted`: samples already taken by earlier requests of the same window; more than
    `max_samples` in all is an error before any row is built."""
    data = check_status(document)
    kind = data.get("resultType")
    if kind != "matrix":
        raise CollectError(f"the answer's resultType is {str(kind)[:20]!r}, not 'matrix' (a range query)")
    result = data.get("result")
    if not isinstance(result, list):
        raise CollectError("the answer's `result` is not a list")
    series: list[tuple[dict[str, str], list[Any]]] = []
    total = counted
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("metric", {}), dict):
            raise CollectError("a series in the answer is not an object with `metric` labels")
        values = item.get("values") or []
        if item.get("histograms"):
            raise CollectError(
                "the query returns native histograms; ask for a number (histogram_quantile, "
                "histogram_count, histogram_sum)"
            )
        if not isinstance(values, list):
            raise CollectError("a series' `values` is not a list")
        total += len(values)
        if total > max_samples:
            raise CollectError(
                f"the answer holds more than {max_samples:,} samples ({len(result):,} series); "
                "aggregate in the query (sum by (...)) or raise max_samples"
            )
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        series.append((labels, values))
    keep_name = _names_needed([labels for labels, _ in series])
    columns = sorted({k for labels, _ in series for k in labels})
    rows: list[Row] = []
    for labels, values in series:
        # Every label any series has: a label a series lacks is "" (Prometheus's own rule).
        shape = _Series(
            {col: labels.get(col, "") for col in columns},
            series_label_key(labels, keep_name),
            timestamp_column,
            value_column,
        )
        for pair in values:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise CollectError("a sample is not a [timestamp, value] pair")
            try:
                instant = round(float(pair[0]))
            except (TypeError, ValueError, OverflowError):
                raise CollectError(f"a sample time is not a number: {str(pair[0])[:40]!r}") from None
            period = period_of.get(instant)
            if period is None:
                raise CollectError(
                    f"a sample at {instant}, an instant not asked for: a query frontend moved the "
                    "range to multiples of the step (Thanos, Mimir: turn step alignment off, or "
                    "use a UTC timezone for day-long periods)"
                )
            rows.append(SampleRow(shape, period, sample_value(pair[1])))
    return rows


_ABSENT = object()


@dataclass(frozen=True)
class _Series:
    """What every row of one series shares (built once per series, not per sample)."""

    columns: dict[str, str]  # the labels as columns
    key: dict[str, str]  # the labels that make the series key
    timestamp_column: str
    value_column: str


class SampleRow(Mapping[str, Any]):
    """One sample as a row: the series' label columns, `LABELS`, the period and the value.

    A view, not a dict: a million samples of ten-label series would otherwise be a million
    copies of the labels (about 300 bytes a row instead of about 70)."""

    __slots__ = ("_period", "_series", "_value")

    def __init__(self, series: _Series, period: int, value: float | None) -> None:
        self._series, self._period, self._value = series, period, value

    def __getitem__(self, name: str) -> Any:
        got = self.get(name, _ABSENT)
        if got is _ABSENT:
            raise KeyError(name)
        return got

    def __contains__(self, name: object) -> bool:
        s = self._series
        return name == s.value_column or name == s.timestamp_column or name == LABELS or name in s.columns

    def get(self, name: str, default: Any = None) -> Any:
        s = self._series
        if name == s.timestamp_column:
            return self._period
        if name == s.value_column:
            return self._value
        if name == LABELS:
            return s.key
        return s.columns.get(name, default)

    def __iter__(self) -> Iterator[str]:
        s = self._series
        yield from (c for c in s.columns if c not in (s.timestamp_column, s.value_column))
        yield from (LABELS, s.timestamp_column, s.value_column)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def _names_needed(all_labels: list[dict[str, str]]) -> bool:
    """Do two series differ only by their metric name (`{__name__=~"a|b"}`)?"""
    seen: set[tuple[tuple[str, str], ...]] = set()
    for labels in all_labels:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != NAME))
        if rest in seen:
            return True
        seen.add(rest)
    return False
