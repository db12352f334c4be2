"""What a chart keeps of a long series: every point up to `MAX_POINTS`; beyond, per bucket
its lowest and highest value (a spike or a dip never disappears) and every anomaly.
Used by the metric page's series endpoint and the backtest report alike."""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_POINTS = 20_000  # per series


def kept(
    values: Sequence[float | None], anomalous: Sequence[bool | int], limit: int = MAX_POINTS
) -> list[int]:
    """The indices to draw, in order. Missing values (None, NaN) are not extremes; a bucket
    of only missing values keeps its first, so a gap stays a gap."""
    n = len(values)
    if n <= limit:
        return list(range(n))
    size = math.ceil(n / (limit // 2))
    keep: set[int] = {i for i in range(n) if anomalous[i]}
    for lo in range(0, n, size):
        present = [
            (v, i) for i in range(lo, min(n, lo + size)) if (v := values[i]) is not None and not math.isnan(v)
        ]
        if present:
            keep.add(min(present)[1])
            keep.add(max(present)[1])
        else:
            keep.add(lo)
    return sorted(keep)
