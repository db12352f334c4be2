"""Surprises of hand-made |z| tails after a calm reference: `auto`'s rest rules (`rest`,
`rest_margin`) judged without the baselines."""

from __future__ import annotations

import numpy as np

from detectkd.detectors import autosustain
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo, ring_array

FIVE_MIN = 300
CALM = 0.5
LINE = Params().min_z  # the line of calm half-normal |z| (their 0.995 quantile is about 2.8): 4


def held(
    tail: list[float],
    down: list[int] | None = None,
    burst: int = 2,
    breaks: list[int] | None = None,
    **params: object,
) -> np.ndarray:
    """The surprises of the |z| `tail` (below their baseline where `down` says so; a range
    break at the indexes `breaks` names) judged after 2,000 calm |z| (half-normal: the line is
    `min_z`, 4) with, halfway, a past burst of `burst` points at 1.5 lines (a run of the
    series' history, among the ring's largest |z|), without the short mean and, unless
    `params` name them, without the rest margin (any greater surprise pages while resting)
    and without `pair_hour` (the rule apart: a tail of 282 points reaches a day back)."""
    det = AutoDetector(
        Params.model_validate({"pair_mean": 0, "rest_margin": 1.0, "pair_hour": 0} | params), FIVE_MIN
    )
    memo = Memo(2000)
    ring = np.abs(np.random.default_rng(1).normal(0, 1, 2000))
    ring[1000 : 1000 + burst] = 1.5 * LINE
    memo.recent = ring_array(ring)
    if det.p.sustain:  # the ring's window medians, as a rebuild leaves them
        memo.medians = autosustain.medians(memo.ring(), det.p.sustain)
    z = np.asarray(tail) * np.where(np.asarray(down or [0] * len(tail)) > 0, -1.0, 1.0)
    flags = np.zeros(z.size, np.int8)
    flags[breaks or []] = 1  # a range break (`autofit`'s flag 1)
    return det._surprises(memo, z, flags)[0]


def starts(surprises: np.ndarray) -> list[int]:
    on = surprises >= 1
    return np.flatnonzero(on & ~np.r_[False, on[:-1]]).tolist()


def episode(gap: int, second: float, *, spike: float = 0.0) -> list[float]:
    """A pair at 1.1 lines, calm for `gap` points, a second pair at `second` lines (or, with
    `spike`, one point at that many lines)."""
    after = [spike * LINE] if spike else [second * LINE] * 2
    return [CALM, 1.1 * LINE, 1.1 * LINE] + [CALM] * gap + after + [CALM] * 3
