"""Sorted sliding windows: exact median and MAD per point in O(log n) instead of a sort.

`mad` without weights and without detrending keeps, per series, one sorted
list per seasonal group (and one for the whole window while a group is too
small). Each new point is inserted once and evicted once; the median is an
index and the MAD the k-th smallest of two sorted sequences (the distances
below and above the median). The answers are the same numbers the full
computation gives (tests compare them), so replays and live checks agree.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable


class SortedWindow:
    """Values with their (time, row) in arrival order, and the same values sorted."""

    __slots__ = ("_rows", "_times", "_vals", "sorted")

    def __init__(self) -> None:
        self._times: deque[int] = deque()
        self._rows: deque[int] = deque()
        self._vals: deque[float] = deque()
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self.sorted)

    def add(self, time: int, row: int, value: float) -> None:
        self._times.append(time)
        self._rows.append(row)
        self._vals.append(value)
        insort(self.sorted, value)

    def evict(self, min_time: int, min_row: int) -> None:
        """Drop values older than `min_time` or from rows before `min_row`."""
        times, rows, vals, ordered = self._times, self._rows, self._vals, self.sorted
        while times and (times[0] < min_time or rows[0] < min_row):
            times.popleft()
            rows.popleft()
            del ordered[bisect_left(ordered, vals.popleft())]

    def values(self) -> list[float]:
        """In arrival order."""
        return list(self._vals)

    @staticmethod
    def of(times: list[int], rows: list[int], values: list[float]) -> SortedWindow:
        w = SortedWindow()
        w._times, w._rows, w._vals = deque(times), deque(rows), deque(values)
        w.sorted = sorted(values)
        return w

    def median(self) -> float:
        """As numpy's: the middle value, or the mean of the two middle values."""
        s = self.sorted
        n = len(s)
        if n % 2:
            return s[n // 2]
        return (s[n // 2 - 1] + s[n // 2]) / 2

    def mad(self, centre: float) -> float:
        """The median of |x - centre| (unscaled), as numpy's median would give it."""
        s = self.sorted
        n = len(s)
        split = bisect_left(s, centre)  # s[:split] < centre <= s[split:]

        def below(i: int) -> float:  # ascending distances of the values under the centre
            return centre - s[split - 1 - i]

        def above(i: int) -> float:
            return s[split + i] - centre

        if n % 2:
            return kth_of_two(below, split, above, n - split, n // 2)
        low, high = kth_pair(below, split, above, n - split, n // 2 - 1)
        return (low + high) / 2


def kth_of_two(a: Callable[[int], float], na: int, b: Callable[[int], float], nb: int, k: int) -> float:
    """The k-th smallest (0-based) of two ascending sequences given by index functions."""
    return kth_pair(a, na, b, nb, k)[0]


def kth_pair(
    a: Callable[[int], float], na: int, b: Callable[[int], float], nb: int, k: int
) -> tuple[float, float]:
    """The k-th and (k+1)-th smallest (0-based) of two ascending sequences (the second is
    inf when there is none): one binary search, O(log(na + nb))."""
    # i = how many of the k + 1 smallest come from a; j = k + 1 - i from b.
    lo, hi = max(0, k + 1 - nb), min(k + 1, na)
    while lo < hi:
        i = (lo + hi) // 2
        j = k + 1 - i
        if j > 0 and i < na and b(j - 1) > a(i):
            lo = i + 1
        else:
            hi = i
    i, j = lo, k + 1 - lo
    inf = float("inf")
    kth = max(a(i - 1) if i > 0 else -inf, b(j - 1) if j > 0 else -inf)
    following = min(a(i) if i < na else inf, b(j) if j < nb else inf)
    return kth, following
