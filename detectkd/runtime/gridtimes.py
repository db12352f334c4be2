"""The times of a metric's windows, one buffer for the series on one time grid (issue 28).

A many-series metric's series are read by one query a period: their windows hold the same
times. A window keeps its times in a `Times` buffer whose written slots never change, so
windows holding the same times can share it: a window appends by writing the next free
slot, or, when another window wrote that slot already, by checking it holds the same time;
a window whose times part from the buffer's (a missing period, an insert) moves to a
buffer of its own. A window that moves its points (it is full, or its start trimmed far)
asks its metric's `TimesPool` for a buffer with those times, and gets the one a window on
the same grid made when it moved at the same point. 1,000 series of a full one-minute
`auto` history share 28 KiB of times instead of holding 28 KiB each; the values stay per
series. The windows judge from the same times either way: nothing else changes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

TimeArray = npt.NDArray[np.int32 | np.int64]  # seconds from `windows.EPOCH`, as a window keeps them


class Times:
    """A times buffer: `arr[:filled]` is written and never changes (windows may share it);
    a window appends at `filled`, or checks that the time there is its own."""

    __slots__ = ("__weakref__", "arr", "filled")

    def __init__(self, arr: TimeArray, filled: int) -> None:
        self.arr, self.filled = arr, filled

    def put(self, i: int, times: TimeArray) -> bool:
        """Write `times` at slots `i`... (a window's live end, `i` <= `filled`): False, nothing
        written, when slots already written there hold other times."""
        k, f = int(times.size), self.filled
        if f > i:
            m = min(f, i + k) - i
            if not np.array_equal(self.arr[i : i + m], times[:m]):
                return False
            if m == k:
                return True
            times, i = times[m:], f
        self.arr[i : i + times.size] = times
        self.filled = i + int(times.size)
        return True

    def put_one(self, i: int, time: int) -> bool:
        """`put` of one time (a live append: no array built)."""
        if self.filled == i:
            self.arr[i] = time
            self.filled = i + 1
            return True
        return bool(self.arr[i] == time)


class TimesPool:
    """A metric's times buffers by what they held when made, so that windows moving the same
    times get the same buffer. Holds them weakly: a buffer no window uses is freed. `shared`
    False (a lone window): every buffer is new."""

    __slots__ = ("_known", "shared")

    def __init__(self, shared: bool = True) -> None:
        self.shared = shared
        self._known: weakref.WeakValueDictionary[tuple[object, ...], Times] = weakref.WeakValueDictionary()

    def _key(self, times: TimeArray, capacity: int) -> tuple[object, ...]:
        k = int(times.size)
        # A few of the times (no pass over them, no copy): equal content is checked on use.
        some = tuple(int(times[i]) for i in (0, k // 4, k // 2, 3 * k // 4, k - 1)) if k else ()
        return (times.dtype.str, capacity, k, *some)

    def _get(self, times: TimeArray, capacity: int, make: Callable[[], Times]) -> Times:
        """The buffer another window of this metric made with `times` and `capacity`, or
        `make()`'s (kept for the next one)."""
        key = self._key(times, capacity)
        got = self._known.get(key) if self.shared else None
        k = int(times.size)
        if got is not None and got.filled >= k and np.array_equal(got.arr[:k], times):
            return got
        made = make()
        if self.shared:
            self._known[key] = made
        return made

    def buffer(self, times: TimeArray, capacity: int) -> Times:
        """A buffer of `capacity` slots starting with `times` (a copy, or a buffer another
        window of this metric made with the same times and capacity)."""

        def copy() -> Times:
            arr: TimeArray = np.empty(capacity, times.dtype)
            arr[: times.size] = times
            return Times(arr, int(times.size))

        return self._get(times, capacity, copy)

    def adopt(self, times: TimeArray) -> Times:
        """`times` as a full buffer, without a copy (a restart's snapshot: nothing else holds
        them), or the buffer another window took with the same times."""
        return self._get(times, int(times.size), lambda: Times(times, int(times.size)))
