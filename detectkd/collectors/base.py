"""The collector contract.

A collector turns a `Window` into raw rows (column name -> value). It owns
its connections (or borrows a shared pool) and must:

- finish or raise within its configured timeout, cancelling the query where
  the source allows it;
- raise `CollectError` with a one-line reason and no credentials on any
  source failure;
- stop reading a result at `max_rows` + 1 rows and raise `too_many_rows`
  (a huge result is refused while it is read, never held whole);
- let `asyncio.CancelledError` through untouched.

A collector may also answer many windows in one call (`ManyWindows.collect_many`: the SQLite
source runs them in one hop to its thread); what it returns, and how it fails, is what
`collect` of each window in turn would have.

Turning rows into typed points is shared (`detectkd.collectors.points`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from detectkd.errors import CollectError
from detectkd.timegrid import fmt_local, local_time

if TYPE_CHECKING:
    from detectkd.resources import Resources

Row = Mapping[str, Any]
FETCH_CHUNK = 5_000  # rows read from a server per round trip


def next_chunk(max_rows: int | None, have: int) -> int:
    """How many rows to ask for next: a chunk, but never beyond max_rows + 1 in all."""
    return FETCH_CHUNK if max_rows is None else min(FETCH_CHUNK, max_rows + 1 - have)


class TooManyRows(CollectError):
    """A result above `collector.max_rows` (`too_many_rows`)."""


def too_many_rows(limit: int) -> CollectError:
    """A result above `collector.max_rows`: reading stopped at the row after the limit."""
    return TooManyRows(
        f"the query returned more than collector.max_rows ({limit:,}) rows; "
        "aggregate in the query or raise max_rows"
    )


@dataclass(frozen=True)
class Window:
    """Periods [start, finish) to collect, as epoch seconds on the metric's grid."""

    start: int
    finish: int
    interval: timedelta
    tz: ZoneInfo

    def template_vars(self, names: Collection[str] | None = None) -> dict[str, Any]:
        """Variables for query, URL and parameter templates (DetectK names). `names`: only
        these (the ones a template uses, `templating.template_names`; the others are not
        computed: a warm-up renders its query for each of its periods)."""
        made = _VARS if names is None else (k for k in names if k in _VARS)
        return {k: _VARS[k](self) for k in made}


def _interval_text(interval: timedelta) -> str:
    from detectkd.durations import format_duration

    return format_duration(interval)


_VARS: dict[str, Callable[[Window], Any]] = {
    "period_start": lambda w: fmt_local(w.start, w.tz),
    "period_finish": lambda w: fmt_local(w.finish, w.tz),
    "period_start_dt": lambda w: local_time(w.start, w.tz),
    "period_finish_dt": lambda w: local_time(w.finish, w.tz),
    "period_start_ts": lambda w: w.start,
    "period_finish_ts": lambda w: w.finish,
    "interval": lambda w: _interval_text(w.interval),
    "interval_seconds": lambda w: int(w.interval.total_seconds()),
    # DetectK's: the time the check runs. For a scheduled check that is the end of the
    # window (plus `delay`); a replay (catch-up, backtest) gets the same value again.
    "execution_time": lambda w: local_time(w.finish, w.tz),
}


@dataclass(frozen=True)
class Build:
    """What a collector type's `build` gets: its validated params, the shared connection
    pools, the columns that name a row's timestamp and value, and the most rows a result
    may have (None: no limit)."""

    params: Any
    resources: Resources
    timestamp_column: str = "period_time"
    value_column: str = "value"
    max_rows: int | None = None


class Collector(Protocol):
    async def collect(self, window: Window) -> list[Row]:
        """Rows for `window`. Raises CollectError; honours its timeout."""
        ...

    async def close(self) -> None:
        """Release what this collector holds (not shared pools)."""
        ...


class ManyWindows(Protocol):
    """A collector that can answer several windows in one call (one hop to its thread)."""

    async def collect_many(self, windows: Sequence[Window]) -> list[list[Row]]:
        """The rows of each window, in order: one query each, as `collect` of each in turn
        would return them. The first failure raises (the queries before it did run)."""
        ...
