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

from detectkd.detectors.autolong import LongTail
from detectkd.detectors.autosustain import NONE, medians
from detectkd.detectors.autoweekly import SLOTS, WeeklyProfile
from detectkd.detectors.base import FloatArray, StateArray, sorted_quantile
from detectkd.detectors.evt import tail_line

TYPECODE, DTYPE = "f", np.float32  # the |z| ring's precision


_TOP = float(np.finfo(DTYPE).max)


def kept(az: FloatArray) -> FloatArray:
    """|z| as the ring keeps them (single precision; one beyond its largest is that largest, not
    infinite: a sorted ring must hold what a re-sort of it holds), back in double."""
    return np.minimum(az, _TOP).astype(DTYPE).astype(np.float64)


def ring_array(values: StateArray) -> array[float]:
    """`values` as the ring's single-precision array (`kept`)."""
    return array(TYPECODE, np.ascontiguousarray(np.minimum(values, _TOP), DTYPE).tobytes())


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
    side: int = 0  # the side of the last alarm: 1 above its baseline, -1 below, 0 none (`rest_margin`)
    fit_key: tuple[int, ...] | None = None  # the block whose baselines `fit` holds (live checks)
    packed: PackedFit | None = None  # those baselines, packed (`fit` unpacks them)
    # The medians of the windows of `sustain` |z| inside the ring (`autosustain`): derived,
    # and only with `sustain` on (off: the one shared empty array, nothing per series).
    medians: FloatArray = field(default_factory=lambda: NONE)
    long: LongTail | None = None  # the long memory of |z| (`long_days`; `autolong`), off: None
    weekly: WeeklyProfile | None = None  # the weekly profile (`weekly_profile`; `autoweeklyfit`), off: None
    weekly_sqrt: bool = False  # its scale: the square root (a count's)
    # the newest block whose start sealed the profile (`autoweeklyfit.prepared`; derived, not
    # kept: passing a block again changes nothing): a many-series fit's (`autorefit`) new block
    weekly_passed: int | None = None

    @property
    def fit(self) -> BlockFit | None:
        """The baselines of the block `fit_key` names (one block), kept packed: `PackedFit`."""
        return None if self.packed is None else self.packed.unpacked()

    @fit.setter
    def fit(self, value: BlockFit | None) -> None:
        self.packed = None if value is None else PackedFit(value)

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

    def back(self, k: int) -> float:
        """The |z| `k` judged points before the newest (as the ring keeps it); NaN beyond it."""
        n = len(self.recent)
        if k >= n:
            return math.nan
        return self.recent[(self.head - 1 - k) % n] if n == self.size else self.recent[n - 1 - k]

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
        newest point alarmed, the side of the last alarm."""
        ring = np.frombuffer(self.recent, DTYPE) if len(self.recent) else np.empty(0, DTYPE)
        ring = np.concatenate([ring[self.head :], ring[: self.head]])
        last = math.nan if self.last is None else float(self.last)
        scalars = (last, self.surprise, float(self.run), float(self.rest), self.level, float(self.alarmed))
        more = () if self.long is None else self.long.export()  # (`long_days`)
        if self.weekly is not None:  # (`weekly_profile`: its means after the ring, 2 numbers last)
            means, newest = self.weekly.export()
            ring, more = np.concatenate([ring, means]), (*more, *newest, float(self.weekly_sqrt))
        return ring, (*scalars, float(self.side), *more)

    @classmethod
    def imported(
        cls,
        size: int,
        data: StateArray,
        scalars: tuple[float, ...],
        sustain: int = 0,
        half: float = 0.0,
        count: float = 0.5,
        weekly: int = 0,
    ) -> Memo:
        """The memo `export` described (a ring of another size keeps its newest entries; a
        double one is rounded to single precision); with `half` (`long_days` on: points in its
        half-life) the long memory follows the seven numbers; with `weekly` (the weekly profile
        on: the series' step) its means follow the ring and its two numbers end the scalars."""
        extra = 2 if weekly else 0
        if len(scalars) != 7 + extra and not (half and len(scalars) > 7 + extra):
            got = len(scalars)
            raise ValueError(f"auto's state has {7 + extra} numbers, not {got} (another version's snapshot)")
        if weekly and data.size < SLOTS:
            raise ValueError(f"auto's state has no weekly profile ({data.size} numbers)")
        more = scalars[7 : len(scalars) - extra]
        last, surprise, run, rest, level, alarmed, side = scalars[:7]
        ring = np.ascontiguousarray(
            np.minimum(data[: data.size - SLOTS if weekly else data.size][-size:], _TOP), DTYPE
        )
        m = cls(size)
        if weekly:
            m.weekly = WeeklyProfile.imported(weekly, data[-SLOTS:], scalars[-2:-1])
            m.weekly_sqrt = bool(scalars[-1])
        m.recent = ring_array(ring)  # oldest first: the ring's head is 0
        m.last = None if last != last else int(last)
        m.surprise, m.run, m.rest, m.level = float(surprise), int(run), int(rest), float(level)
        m.alarmed, m.side = bool(alarmed), int(side)
        if sustain:
            m.medians = medians(ring.astype(np.float64), sustain)
        if half:
            m.long = LongTail.imported(half, more, count)
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
    slopes: dict[bool, FloatArray] = field(default_factory=dict)  # per scale, per block: `trend`'s (per s)

    def newest(self) -> BlockFit:
        """The newest block's baselines alone (what the next live check of it reuses)."""
        return self.row(self.is_count.shape[0] - 1)

    def row(self, k: int) -> BlockFit:
        """Block `k` alone (of a many-series fit: series by series, blocks in order)."""
        r = slice(k, k + 1)
        return BlockFit(
            self.is_count[r],
            self.enough[r],
            {s: [(c[r], p[r], o[r], d[r]) for c, p, o, d in m] for s, m in self.fits.items()},
            {s: (top[r], bottom[r]) for s, (top, bottom) in self.ranges.items()},
            self.filled[r],
            self.poisson[r],
            {s: slope[r] for s, slope in self.slopes.items()},
        )


# How a one-block fit is packed: its scales (with their count of baselines) and ranged scales
# in order, the dtypes of its packed arrays, and per part (`_parts`' order) which array and
# where. Few layouts exist (scales x baselines x dtypes): each is made once and shared.
_Scales = tuple[bool, ...]
_Layout = tuple[tuple[tuple[bool, int], ...], _Scales, _Scales, tuple[str, ...], tuple[tuple[int, int], ...]]
_LAYOUTS: dict[tuple[object, ...], _Layout] = {}


def _parts(fit: BlockFit) -> list[np.ndarray]:
    out = [fit.is_count, fit.enough, fit.filled, fit.poisson]
    for models in fit.fits.values():
        for model in models:
            out.extend(model)
    for top, bottom in fit.ranges.values():
        out += [top, bottom]
    return out + list(fit.slopes.values())


def _layout(fit: BlockFit, parts: list[np.ndarray]) -> _Layout:
    scales = tuple((s, len(m)) for s, m in fit.fits.items())
    ranged, sloped = tuple(fit.ranges), tuple(fit.slopes)
    dtypes = tuple(p.dtype.str for p in parts)
    key = (scales, ranged, sloped, dtypes)
    layout = _LAYOUTS.get(key)
    if layout is None:
        kinds = tuple(dict.fromkeys(dtypes))
        seen = dict.fromkeys(kinds, 0)
        slots = []
        for dt in dtypes:
            slots.append((kinds.index(dt), seen[dt]))
            seen[dt] += 1
        layout = _LAYOUTS[key] = (scales, ranged, sloped, kinds, tuple(slots))
    return layout


class PackedFit:
    """One block's `BlockFit` as one array per dtype (issue 28). Kept per series between live
    checks, the fit's two dozen one-element arrays (some of them views of a first run's fit of
    every block, which they kept alive) took about 4.5 KB a series; packed, about 0.5 KB.
    `unpacked` gives back views with the same values and dtypes: the same judgements."""

    __slots__ = ("_arrays", "_layout")

    def __init__(self, fit: BlockFit) -> None:
        parts = _parts(fit)
        if any(p.shape != (1,) for p in parts):
            raise ValueError("only a one-block fit is packed")
        self._layout = _layout(fit, parts)
        arrays = []
        for dt in self._layout[3]:
            packed = np.array([p[0] for p in parts if p.dtype.str == dt], dt)
            packed.flags.writeable = False  # its views are shared by every check of the block
            arrays.append(packed)
        self._arrays = tuple(arrays)

    def unpacked(self) -> BlockFit:
        scales, ranged, sloped, _, slots = self._layout
        arrays = self._arrays
        views = [arrays[a][i : i + 1] for a, i in slots]
        is_count, enough, filled, poisson = views[:4]
        k = 4
        fits: dict[bool, list[tuple[FloatArray, FloatArray, np.ndarray, FloatArray]]] = {}
        for scale, count in scales:
            fits[scale] = [
                (views[j], views[j + 1], views[j + 2], views[j + 3]) for j in range(k, k + 4 * count, 4)
            ]
            k += 4 * count
        ranges = {}
        for scale in ranged:
            ranges[scale] = (views[k], views[k + 1])
            k += 2
        slopes = {scale: views[k + j] for j, scale in enumerate(sloped)}
        return BlockFit(is_count, enough, fits, ranges, filled, poisson, slopes)
