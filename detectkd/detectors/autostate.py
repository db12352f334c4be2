"""`auto`'s derived state per series: the ring of recent |z| that sets the alarm line, the
persistence state, and the baselines of the current refresh block.

The ring holds single-precision |z| (`array("f")`, 4 bytes each, issue 28): half the memory
of doubles, and a line within one part in ten million of theirs (the judged point's own |z|
stays double). Replaying the NAB corpus gives the same verdicts either way. Its sorted copy
(the line is a quantile of it) is built for each judgement (`Memo.sorted`: about 10 us for
2,000) and kept up to date through it, not kept between runs: 8 KB a series less."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from detectkd.detectors.autosustain import NONE, medians
from detectkd.detectors.base import FloatArray, StateArray, sorted_quantile
from detectkd.detectors.evt import tail_line

TYPECODE, DTYPE = "f", np.float32  # the |z| ring's precision


def ring_array(values: StateArray) -> array[float]:
    """`values` as the ring's single-precision array."""
    return array(TYPECODE, np.ascontiguousarray(values, DTYPE).tobytes())


class Gate(Protocol):
    risk: float
    tail: float
    min_samples: int


def line(ordered: array[float], q: float, min_count: int) -> float:
    """The `q` quantile (linear, as numpy) of the sorted finite |z| (`Memo.sorted`); 0 with too few."""
    n = len(ordered)
    return sorted_quantile(ordered, q) if n >= max(min_count, 1) else 0.0


@dataclass
class Memo:
    """Per series: the |z| of the last `size` judged points (NaN for a cold start) in order
    (a ring); the newest judged time and its raw surprise. A plain single-precision array,
    not a list: the garbage collector does not walk millions of floats, and 2,000 |z| take
    8 KB."""

    size: int
    recent: array[float] = field(default_factory=lambda: array(TYPECODE))
    head: int = 0  # once full, the oldest entry of the ring
    last: int | None = None
    surprise: float = 0.0
    run: int = 0  # judged points in a row beyond the line (before fading)
    rest: int = 0  # judged points left in the rest period after the last alarm
    level: float = 0.0  # the surprise of that alarm: only a greater one alarms while resting
    alarmed: bool = False  # the newest judged point alarmed (a run goes on through the rest)
    fit_key: tuple[int, ...] | None = None  # the block whose baselines `fit` holds (live checks)
    fit: BlockFit | None = None
    # The medians of the windows of `sustain` |z| inside the ring (`autosustain`): derived,
    # and only with `sustain` on (off: the one shared empty array, nothing per series).
    medians: FloatArray = field(default_factory=lambda: NONE)

    def sorted(self) -> array[float]:
        """The ring's finite |z|, sorted: what a judgement reads its line from (`line`,
        `extreme`) and keeps up to date as it pushes (`push`)."""
        ring = np.frombuffer(self.recent, DTYPE) if len(self.recent) else np.empty(0, DTYPE)
        return ring_array(np.sort(ring[np.isfinite(ring)]))

    def extreme(self, ordered: array[float], az: float, alone: bool, p: Gate) -> bool:
        """SPOT's test (`evt.tail_line`): is `az` (`alone`), or the smaller of it and the newest
        |z| (two in a row), beyond the line the recent ones (pairs in a row) cross with
        probability `p.risk` (a GPD over their `p.tail` quantile)? Reads the ring (`ordered`:
        its `sorted` finite |z|): no state."""
        risk, level, min_count = p.risk, p.tail, p.min_samples
        if alone:
            return az >= tail_line(np.frombuffer(ordered, DTYPE), risk, level, min_count)
        ring = np.frombuffer(self.recent, DTYPE).astype(np.float64)
        ring = np.concatenate([ring[self.head :], ring[: self.head]])
        if ring.size < 2:
            return True
        pairs = np.fmin(ring[1:], ring[:-1])  # NaN (a cold start) only where both are
        pairs = np.sort(pairs[np.isfinite(pairs)])
        return min(az, float(ring[-1])) >= tail_line(pairs, risk, level, min_count)

    def ring(self) -> FloatArray:
        """The recent |z|, oldest first."""
        ring = np.frombuffer(self.recent, DTYPE).astype(np.float64)
        return np.concatenate([ring[self.head :], ring[: self.head]]) if self.head else ring

    def push(self, az: float, ordered: array[float]) -> None:
        """The newest |z| into the ring, the oldest out; `ordered` (the ring's `sorted` |z|)
        kept so."""
        recent = self.recent
        if len(recent) < self.size:
            recent.append(az)
            az = recent[-1]  # as stored (single precision): the sorted copy holds the same
        else:
            old = recent[self.head]
            recent[self.head] = az
            az = recent[self.head]
            self.head = (self.head + 1) % self.size
            if old == old:
                del ordered[bisect_left(ordered, old)]
        if az == az:
            insort(ordered, az)

    def export(self) -> tuple[StateArray, tuple[float, ...]]:
        """The recent |z| oldest first (single precision); the newest judged time, its surprise,
        the run, the rest period left, the level of the alarm that started it, whether the
        newest point alarmed."""
        ring = np.frombuffer(self.recent, DTYPE) if len(self.recent) else np.empty(0, DTYPE)
        ring = np.concatenate([ring[self.head :], ring[: self.head]])
        last = math.nan if self.last is None else float(self.last)
        return ring, (last, self.surprise, float(self.run), float(self.rest), self.level, float(self.alarmed))

    @classmethod
    def imported(cls, size: int, data: StateArray, scalars: tuple[float, ...], sustain: int = 0) -> Memo:
        """The memo `export` described (a ring of another size keeps its newest entries; a
        double one is rounded to single precision)."""
        if len(scalars) != 6:
            raise ValueError(f"auto's state has 6 numbers, not {len(scalars)} (another version's snapshot)")
        last, surprise, run, rest, level, alarmed = scalars
        ring = np.ascontiguousarray(data[-size:], DTYPE)
        m = cls(size)
        m.recent = ring_array(ring)  # oldest first: the ring's head is 0
        m.last = None if last != last else int(last)
        m.surprise, m.run, m.rest, m.level = float(surprise), int(run), int(rest), float(level)
        m.alarmed = bool(alarmed)
        if sustain:
            m.medians = medians(ring.astype(np.float64), sustain)
        return m


@dataclass(frozen=True)
class BlockFit:
    """The baselines of some blocks: per block whether it is judged as counts and has
    enough data; per scale (square root or not) and baseline, per block (centre, spread, ok)."""

    is_count: np.ndarray
    enough: np.ndarray
    fits: dict[bool, list[tuple[FloatArray, FloatArray, np.ndarray, FloatArray]]]
    ranges: dict[bool, tuple[FloatArray, FloatArray]]  # per scale, per block: recent max, min
    filled: npt.NDArray[np.int64]  # per block: points in its range window
    poisson: FloatArray  # per block: how far its level window varies like a count (`autocounts`)

    def newest(self) -> BlockFit:
        """The newest block's baselines alone (what the next live check of it reuses)."""
        return BlockFit(
            self.is_count[-1:],
            self.enough[-1:],
            {s: [(c[-1:], p[-1:], o[-1:], d[-1:]) for c, p, o, d in m] for s, m in self.fits.items()},
            {s: (top[-1:], bottom[-1:]) for s, (top, bottom) in self.ranges.items()},
            self.filled[-1:],
            self.poisson[-1:],
        )
