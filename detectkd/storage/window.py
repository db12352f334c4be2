"""A metric's stored window as arrays per series, for a first run's window load (issue 28).

`read_points` gives a `StoredPoint` per point: about 230 bytes each (the object, its int, its
float, its context dict), 26 MiB for a 1,000-series metric of 120 points, and millions of small
objects whose freed pages Python's allocator keeps when anything long-lived lands among them.
A window load only needs the periods, the values and (for features) the contexts: a store that
can read them as arrays (`read_window`, SQLite) builds no object per point; any other store's
points are converted right after the read, before the load waits for a judge thread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from detectkd.detectors.base import FloatArray, IntArray
from detectkd.storage.base import DataStore, StoredPoint


@dataclass(frozen=True, slots=True)
class WindowRows:
    """One series' stored points in period order: periods, values (NaN: none), the contexts
    (None: no point has one) and the newest period with a value (-inf: none)."""

    times: IntArray
    values: FloatArray
    contexts: list[dict[str, Any]] | None
    last: float

    def __len__(self) -> int:
        return int(self.times.size)

    @classmethod
    def of(
        cls, times: list[int], values: list[float | None], contexts: list[dict[str, Any]] | None
    ) -> WindowRows:
        """From columns as read (values None where the point has none)."""
        last = next(
            (t for t, v in zip(reversed(times), reversed(values), strict=True) if v is not None), -math.inf
        )
        n = len(times)
        nan = math.nan
        vals = np.fromiter((nan if v is None else v for v in values), np.float64, n)
        return cls(np.fromiter(times, np.int64, n), vals, contexts, last)


def rows_of(points: Sequence[StoredPoint]) -> WindowRows:
    """`StoredPoint`s (in period order) as a series' window rows."""
    contexts = [p.context for p in points] if any(p.context for p in points) else None
    return WindowRows.of([p.period for p in points], [p.value for p in points], contexts)


def same_times(rows: WindowRows, seen: dict[tuple[int, int, int], IntArray]) -> WindowRows:
    """`rows` holding the times array of a series read before it (`seen`, per read) when their
    times are the same (a metric's series on one grid): one array for them, not one a series,
    while the read waits to be loaded (the windows share their times too, `runtime.gridtimes`)."""
    t = rows.times
    if not t.size:
        return rows
    got = seen.setdefault((int(t.size), int(t[0]), int(t[-1])), t)
    if got is t or not np.array_equal(got, t):
        return rows
    return WindowRows(got, rows.values, rows.contexts, rows.last)


class WindowReader(Protocol):
    async def read_window(self, metric: str, since: int, until: int) -> dict[str, WindowRows]:
        """Every series' points of [since, until) as `WindowRows`; `StorageError` as `read_points`."""
        ...


async def read_window(store: DataStore, metric: str, since: int, until: int) -> dict[str, WindowRows]:
    """A metric's stored points of [since, until), every series, as arrays: the store's own
    `read_window` when it has one, else `read_points` converted at once."""
    reader = getattr(store, "read_window", None)
    if reader is not None:
        got: dict[str, WindowRows] = await reader(metric, since, until)
        return got
    stored = await store.read_points(metric, None, since, until)
    seen: dict[tuple[int, int, int], IntArray] = {}
    return {series: same_times(rows_of(points), seen) for series, points in stored.items()}
