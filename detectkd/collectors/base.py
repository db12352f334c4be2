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

Turning rows into typed points is shared (`detectkd.collectors.points`).
"""

from __future__ import annotations

from collections.abc import Mapping
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


def too_many_rows(limit: int) -> CollectError:
    """A result above `collector.max_rows`: reading stopped at the row after the limit."""
    return CollectError(
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

    def template_vars(self) -> dict[str, Any]:
        """Variables for query, URL and parameter templates (DetectK names)."""
        return {
            "period_start": fmt_local(self.start, self.tz),
            "period_finish": fmt_local(self.finish, self.tz),
            "period_start_dt": local_time(self.start, self.tz),
            "period_finish_dt": local_time(self.finish, self.tz),
            "period_start_ts": self.start,
            "period_finish_ts": self.finish,
            "interval": _interval_text(self.interval),
            "interval_seconds": int(self.interval.total_seconds()),
            # DetectK's: the time the check runs. For a scheduled check that is the end of the
            # window (plus `delay`); a replay (catch-up, backtest) gets the same value again.
            "execution_time": local_time(self.finish, self.tz),
        }


def _interval_text(interval: timedelta) -> str:
    from detectkd.durations import format_duration

    return format_duration(interval)


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
