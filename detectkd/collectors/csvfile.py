"""`csv`: a CSV file as a source, so any exported series can be checked or backtested.

    collector:
      type: csv
      params: {path: /data/orders.csv}   # header: timestamp,value[,series columns...]
      series_columns: [region]

The file is parsed once and re-read when its modification time or size
changes; a window returns the rows whose timestamp falls in it.
Timestamps: ISO 8601 (naive ones are in the metric's timezone) or epoch
seconds. A query covers many periods (`multi_period` is on).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
from typing import ClassVar

import numpy as np
from pydantic import Field

from detectkd.collectors.base import Build, Row, Window
from detectkd.collectors.points import usable_time
from detectkd.config.types import Frozen
from detectkd.errors import CollectError


class Params(Frozen):
    MULTI_PERIOD: ClassVar[bool] = True

    path: str
    timestamp_column: str = "timestamp"  # the collector's `timestamp_column` wins when set
    value_column: str = "value"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"


class CsvCollector:
    def __init__(self, params: Params, timestamp_column: str, value_column: str = "value") -> None:
        self._p = params
        self._ts = timestamp_column
        self._value = value_column
        self._stamp: tuple[float, int] | None = None
        self._times: np.ndarray = np.empty(0, np.float64)
        self._rows: list[Row] = []
        self._tz_key: str | None = None
        self._lock = asyncio.Lock()

    async def collect(self, window: Window) -> list[Row]:
        async with self._lock:
            await asyncio.to_thread(self._refresh, window)
        lo = int(np.searchsorted(self._times, window.start, side="left"))
        hi = int(np.searchsorted(self._times, window.finish, side="left"))
        return self._rows[lo:hi]

    def _refresh(self, window: Window) -> None:
        try:
            st = os.stat(self._p.path)
        except OSError as exc:
            raise CollectError(f"csv {self._p.path}: {exc.strerror or exc}") from None
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._stamp and self._tz_key == window.tz.key:
            return
        rows: list[tuple[float, Row]] = []
        try:
            with open(self._p.path, newline="", encoding=self._p.encoding) as fh:
                reader = csv.DictReader(fh, delimiter=self._p.delimiter)
                if reader.fieldnames is None or self._ts not in reader.fieldnames:
                    raise CollectError(f"csv {self._p.path}: no column {self._ts!r} in the header")
                for line, row in enumerate(reader, start=2):
                    try:
                        t = usable_time(row[self._ts], window.tz, self._ts)
                    except CollectError as exc:  # says what is wrong, not what the line holds
                        raise CollectError(f"csv {self._p.path}:{line}: {exc}") from None
                    if t is not None:  # NaN or absurd: in no window (and would unsort the index)
                        rows.append((t, self._typed(row, t)))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CollectError(f"csv {self._p.path}: {exc}") from None
        rows.sort(key=lambda r: r[0])
        self._times = np.asarray([t for t, _ in rows], np.float64)
        self._rows = [r for _, r in rows]
        self._stamp, self._tz_key = stamp, window.tz.key

    def _typed(self, row: dict[str, str], t: float) -> Row:
        """The row with its time as the epoch seconds just parsed and its value as a number
        where the text is one (`float`, as `points.coerce_value` reads text): what the points
        would be either way, typed once for every window that reads the row, and in a shape
        `fastrows` types without a loop per row. A value that is no number stays text (its
        error is the one it always was)."""
        out: dict[str, object] = dict(row)
        out[self._ts] = t
        raw = row.get(self._value)
        if raw is not None:
            with contextlib.suppress(ValueError):
                out[self._value] = float(raw)
        return out

    async def close(self) -> None:
        self._rows = []


def build(b: Build) -> CsvCollector:
    return CsvCollector(b.params, b.timestamp_column, b.value_column)
