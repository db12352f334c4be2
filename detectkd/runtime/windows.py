"""A bounded in-memory history per (metric, series).

Loaded once from storage, then extended with each new point, so a run never
re-reads its whole detection window from the database. When the arrays are full
the live points move to new ones with a sixteenth more room (`headroom`), not
twice the room: 10,000 windows of 2,000 points hold 2,125 slots each, not 4,000
(issue 28); a move every sixteenth of a window's length keeps appends O(1). The
dropped prefix is compacted away when it gets large.

Times are kept as 4-byte seconds from `EPOCH` (2038): every time from 1970 to 2106
fits, and a window with a time outside that keeps 8-byte ones. `history()` gives
them back as absolute 8-byte times (a copy of 2,000 times costs microseconds; the
window holds 12 bytes a point instead of 16). The windows of one metric's series on
one time grid share one times buffer (`gridtimes`): a series holds its values alone.
"""

from __future__ import annotations

import itertools
from typing import Protocol

import numpy as np
import numpy.typing as npt

from detectkd.detectors.base import FloatArray, History, IntArray
from detectkd.runtime.gridtimes import Times, TimesPool

TimeArray = npt.NDArray[np.int32 | np.int64]  # seconds from `EPOCH`, as a window keeps them
_LONE = TimesPool(shared=False)  # a window of its own: no buffer shared

_REVISIONS = itertools.count(1)
MIN_ROOM = 16  # free slots a move leaves at least
EPOCH = 2**31  # times are kept as int32 seconds from here: 1970 to 2106
_LO, _HI = -(2**31), 2**31 - 1


def _narrow(lo: int, hi: int) -> bool:
    """Times `lo`..`hi` fit in 4 bytes from `EPOCH`."""
    return _LO <= lo - EPOCH <= _HI and _LO <= hi - EPOCH <= _HI


def first_at(times: TimeArray, time: int) -> int:
    """The first index of `times` (kept as a window keeps them, `SeriesWindow.saved`) at or
    after `time`."""
    t = time - EPOCH
    return int(np.searchsorted(times, min(max(t, _LO), _HI) if times.dtype == np.int32 else t))


def headroom(live: int) -> int:
    """The capacity for `live` points when the arrays are moved: a sixteenth more."""
    return live + max(MIN_ROOM, live // 16)


class Mask(Protocol):
    """Times whose values a window keeps out (a calendar's `exclude` periods, `Calendar`)."""

    def excluded(self, times: IntArray) -> np.ndarray: ...

    def excluded_at(self, ts: int) -> bool: ...


class SeriesWindow:
    __slots__ = (
        "_cap",
        "_epoch",
        "_feat",
        "_mask",
        "_n",
        "_pool",
        "_revision",
        "_start",
        "_tbuf",
        "_times",
        "_values",
        "negative",
        "span",
    )

    def __init__(
        self,
        span_seconds: int,
        features: tuple[str, ...],
        capacity: int = 64,
        mask: Mask | None = None,
        pool: TimesPool | None = None,
    ) -> None:
        self.span = span_seconds
        # Times whose values stay out of the window (a calendar's `exclude` periods): kept as
        # missing, so no baseline learns from them; the stored points keep their values.
        self._mask = mask
        self._cap = capacity
        # Times - EPOCH, in a buffer the metric's windows on the same grid share (`gridtimes`):
        # `_times` is `_tbuf.arr`, written through `_put` only.
        self._pool = _LONE if pool is None else pool
        self._tbuf: Times
        self._times: TimeArray
        self._use(self._pool.buffer(np.empty(0, np.int32), capacity))
        self._values: FloatArray = np.empty(capacity, np.float64)
        self._feat: dict[str, FloatArray] = {f: np.empty(capacity, np.float64) for f in features}
        self._start = 0
        self._n = 0
        self._revision = next(_REVISIONS)  # new on every insert or replace (not on append)
        self._epoch = 0  # counts compactions (which move the points)
        self.negative = False  # a negative value was seen: the series is not a count

    def __len__(self) -> int:
        return self._n - self._start

    def filled(self) -> int:
        """How many of its points have a value."""
        return int(np.count_nonzero(~np.isnan(self._values[self._start : self._n])))

    @property
    def last_time(self) -> int | None:
        return int(self._times[self._n - 1]) + EPOCH if self._n > self._start else None

    def _use(self, buf: Times) -> None:
        self._tbuf, self._times = buf, buf.arr

    def _put(self, i: int, times: TimeArray) -> None:
        """Write times at slots `i`... (the live end): into the shared buffer when it holds
        the same times there or nothing yet, else into a buffer of this window's own."""
        if not self._tbuf.put(i, times):
            self._use(self._pool.buffer(np.concatenate((self._times[:i], times)), self._cap))

    def _fit(self, lo: int, hi: int) -> None:
        """Make times `lo`..`hi` storable: 8-byte times from now on if beyond the 4-byte range."""
        if not _narrow(lo, hi) and self._times.dtype == np.int32:  # (the cheap test first)
            self._use(self._pool.buffer(self._times[: self._n].astype(np.int64), self._cap))

    def _key(self, time: int) -> int:
        """`time` as stored, for searches (clamped to the stored range: the same order)."""
        t = time - EPOCH
        if _LO <= t <= _HI:  # (clamping changes nothing: the dtype not asked)
            return t
        return min(max(t, _LO), _HI) if self._times.dtype == np.int32 else t

    def add(self, time: int, value: float | None, features: dict[str, float]) -> None:
        """Append a point. Out-of-order or repeated times replace/insert correctly."""
        if self._mask is not None and value is not None and self._mask.excluded_at(time):
            value = None
        if value is not None and value < 0:
            self.negative = True
        i = self._n
        if i > self._start and time <= int(self._times[i - 1]) + EPOCH:  # not after `last_time`
            self._insert(time, value, features)
            return
        if i == self._cap:
            self._compact(headroom(i - self._start))
            i = self._n
        self._fit(time, time)
        if not self._tbuf.put_one(i, time - EPOCH):
            self._put(i, np.array([time - EPOCH], self._times.dtype))
        self._values[i] = np.nan if value is None else value
        if self._feat:
            for name, column in self._feat.items():
                column[i] = features.get(name, np.nan)
        self._n = i + 1
        self._trim(time)

    def extend(self, times: IntArray, values: FloatArray, features: dict[str, FloatArray]) -> None:
        """Append many points at once (a window read from the store): in bulk when their times
        increase and follow the last point, otherwise one by one as `add` does."""
        last = self.last_time
        k = int(times.size)
        if k == 0:
            return
        values = self._masked(times, values)
        if (last is not None and int(times[0]) <= last) or (k > 1 and not bool((np.diff(times) > 0).all())):
            for i in range(k):
                v = float(values[i])
                self.add(int(times[i]), None if v != v else v, {f: float(c[i]) for f, c in features.items()})
            return
        if bool((values < 0).any()):
            self.negative = True
        if self._n + k > self._cap:
            self._compact(headroom(self._n - self._start + k))
        self._fit(int(times[0]), int(times[-1]))
        s = self._n
        self._put(s, (times - EPOCH).astype(self._times.dtype))
        self._values[s : s + k] = values
        for name, column in self._feat.items():
            column[s : s + k] = features.get(name, np.nan)
        self._n += k
        self._trim(int(times[-1]))

    def take(self, times: TimeArray, values: FloatArray, features: dict[str, FloatArray]) -> None:
        """An empty window takes these arrays as its own, without a copy (a restart's snapshot,
        read for it: nothing else holds them); `times` as a window keeps them (`saved`: seconds
        from `EPOCH`, 4 bytes when they fit). Otherwise `extend`."""
        if len(self) or (times.size > 1 and not bool((np.diff(times) > 0).all())):
            self.extend(times.astype(np.int64) + EPOCH, values, features)
            return
        k = int(times.size)
        if k and times.dtype == np.int64 and _narrow(int(times[0]) + EPOCH, int(times[-1]) + EPOCH):
            times = times.astype(np.int32)  # (a window that held a time beyond 2106 no longer does)
        if self._mask is not None and k:
            values = self._masked(times.astype(np.int64) + EPOCH, values)
        self._values, self._cap, self._start, self._n = values, max(k, 1), 0, k
        self._use(self._pool.adopt(times) if k else self._pool.buffer(np.empty(0, np.int32), 1))
        if k == 0:
            self._values = np.empty(1, np.float64)
        self._feat = {
            f: features[f] if f in features and k else np.full(max(k, 1), np.nan) for f in self._feat
        }
        self.negative = bool((values < 0).any())
        self._revision = next(_REVISIONS)
        self._epoch += 1

    def saved(self) -> tuple[TimeArray, FloatArray, dict[str, FloatArray]]:
        """The live points as `take` takes them back: views, times as kept (no copy)."""
        s, n = self._start, self._n
        return self._times[s:n], self._values[s:n], {k: v[s:n] for k, v in self._feat.items()}

    def _masked(self, times: IntArray, values: FloatArray) -> FloatArray:
        if self._mask is None:
            return values
        out = self._mask.excluded(times)
        return np.where(out, np.nan, values) if out.any() else values

    def _insert(self, time: int, value: float | None, features: dict[str, float]) -> None:
        self._revision = next(_REVISIONS)
        self._fit(time, time)
        times = self._times[self._start : self._n]
        idx = self._start + int(np.searchsorted(times, time - EPOCH))
        v = np.nan if value is None else value
        if idx < self._n and self._times[idx] == time - EPOCH:
            self._values[idx] = v
            for name, column in self._feat.items():
                column[idx] = features.get(name, np.nan)
            return
        if self._n == self._cap:
            self._compact(headroom(self._n - self._start))  # moves the points: found again
            idx = self._start + int(np.searchsorted(self._times[self._start : self._n], time - EPOCH))
        for arr in (self._values, *self._feat.values()):
            arr[idx + 1 : self._n + 1] = arr[idx : self._n].copy()
        moved = np.insert(self._times[: self._n], idx, time - EPOCH)
        self._use(self._pool.buffer(moved, self._cap))  # (slots written once: a new buffer)
        self._values[idx] = v
        for name, column in self._feat.items():
            column[idx] = features.get(name, np.nan)
        self._n += 1

    def _trim(self, newest: int) -> None:
        cutoff = self._key(newest - self.span)
        times, start = self._times, self._start
        if times[start] >= cutoff:  # the usual case: nothing fell out yet
            return
        if start + 1 < self._n and times[start + 1] >= cutoff:  # a full window's append: one out
            drop = 1  # (what the search gives: the times increase)
        else:
            drop = int(times[start : self._n].searchsorted(cutoff, side="left"))
        self._start += drop
        if self._start > self._cap // 2:
            self._compact(self._cap)

    def _compact(self, capacity: int) -> None:
        live = self._n - self._start

        def move(arr: np.ndarray, dtype: type) -> np.ndarray:
            out: np.ndarray = np.empty(capacity, dtype)
            out[:live] = arr[self._start : self._n]
            return out

        self._use(self._pool.buffer(self._times[self._start : self._n], capacity))
        self._values = move(self._values, np.float64)
        self._feat = {k: move(v, np.float64) for k, v in self._feat.items()}
        self._cap = capacity
        self._n = live
        self._start = 0
        self._epoch += 1

    def checkpoint(self) -> tuple[int, int, int, int]:
        """What `restore` needs to undo the appends made after this call."""
        return self._n, self._start, self._epoch, self._revision

    def restore(self, cp: tuple[int, int, int, int], since: int) -> None:
        """Undo everything since `checkpoint()`: exactly when only appends happened (no
        compaction, no insert); otherwise by dropping every point at or after `since`."""
        n, start, epoch, revision = cp
        if self._epoch == epoch and self._revision == revision and self._n >= n:
            self._n, self._start = n, start
        else:
            live = self._times[self._start : self._n]
            self._n = self._start + int(np.searchsorted(live, self._key(since), side="left"))
        self._revision = next(_REVISIONS)

    def history(self) -> History:
        """The live points: views of the values and features, the times made absolute (a copy)."""
        s, n = self._start, self._n
        times = self._times[s:n].astype(np.int64)
        times += EPOCH
        return History(
            times,
            self._values[s:n],
            {k: v[s:n] for k, v in self._feat.items()},
            self._revision,
        )
