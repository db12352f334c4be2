"""`auto`'s short mean for persistence (`autopairs`, `pair_mean`): two in a row that would
start a run of alarms also need the mean of the last three |z| beyond the same quantile of such
means in the series' own ring. Where deviations come in runs, a two-point blip barely at the
line is not news; on independent noise and for a real step nothing changes; a live check gives
what a replay gives."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors import autopairs
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo, ring_array
from detectkd.detectors.base import Current, History
from detectkd.runtime.windows import SeriesWindow

FIVE_MIN = 300


def held(ring: np.ndarray, tail: list[float], **params: object) -> np.ndarray:
    """The surprises of `tail` judged after a ring of |z| `ring` (persistence, the rest),
    without `pair_hour` unless `params` name it (the rings here have no hours)."""
    det = AutoDetector(Params.model_validate({"pair_hour": 0} | params), FIVE_MIN)
    memo = Memo(2000)
    memo.recent = ring_array(ring)
    az = np.asarray(tail)
    return det._surprises(memo, az, np.zeros(az.size, bool))[0]


def lingering(seed: int) -> np.ndarray:
    """2,000 |z| whose larger deviations come in runs: half-normal noise with a run of six
    |z| of 3.3 to 4.7 every 100 points (the line, the 0.995 quantile, is about 4.5: above
    `min_z`, 4, so the line is the ring's own)."""
    rng = np.random.default_rng(seed)
    az = np.abs(rng.normal(0, 1, 2000))
    for start in range(20, 2000, 100):
        az[start : start + 6] = rng.uniform(10 / 3, 14 / 3, 6)
    return az


def own_line(ring: np.ndarray) -> float:
    """The ring's 0.995 quantile, checked to be its alarm line (above `min_z`)."""
    line = float(np.quantile(ring, 0.995))
    assert line > Params().min_z  # else the floor is the line and the blips are sized wrong
    return line


def test_a_two_point_blip_where_deviations_come_in_runs_is_held() -> None:
    """Calm, then two |z| just beyond the line, then calm: persistence alarms, but the mean of
    the three is below the series' usual means of three, which reach the line."""
    for seed in range(3):
        ring = lingering(seed)
        line = own_line(ring)
        blip = [0.5, 1.02 * line, 1.02 * line, 0.5]
        assert (held(ring, blip, pair_mean=0) >= 1).any()
        assert not (held(ring, blip) >= 1).any()  # the default: pair_mean 3


def test_on_independent_noise_a_pair_alarms_as_before() -> None:
    """Independent |z|: the means of three are far below the single-point line, so the same
    blip alarms (at its second point) with the short mean too."""
    ring = np.abs(np.random.default_rng(3).normal(0, 1, 2000))
    line = max(float(np.quantile(ring, 0.995)), Params().min_z)  # the floor: 4
    blip = [0.5, 1.02 * line, 1.02 * line, 0.5]
    assert np.array_equal(held(ring, blip), held(ring, blip, pair_mean=0))
    assert held(ring, blip)[2] >= 1


def test_a_step_still_alarms_by_its_third_point() -> None:
    """Where deviations come in runs, a step whose |z| stay beyond the line alarms by its third
    point (the mean of three is then the step's own height)."""
    for seed in range(3):
        ring = lingering(seed)
        step = [0.5] + [1.1 * own_line(ring)] * 8
        found = np.flatnonzero(held(ring, step) >= 1)
        assert found.size and found[0] <= 3


def test_the_line_of_means_reads_the_ring_in_order() -> None:
    """The means are of |z| consecutive in time (not across the ring's head); the mean judged
    is of the point and the newest two before it."""
    memo = Memo(5)
    ordered = memo.sorted()
    for az in (9.0, 1.0, 2.0, 3.0, 4.0, 5.0):  # the ring is now 1, 2, 3, 4, 5 (head 1)
        memo.push(az, ordered)
    assert memo.head == 1
    assert autopairs.line(memo.ring(), 3, 1.0, 1) == pytest.approx(4.0)  # (3 + 4 + 5) / 3
    assert autopairs.surprise(memo, 6.0, 3, 1.0, 1) == pytest.approx((4.0 + 5.0 + 6.0) / 3 / 4.0)
    assert autopairs.surprise(memo, 6.0, 3, 1.0, 4) == float("inf")  # too few means: no gate


def test_the_same_live_and_in_a_replay() -> None:
    """Point by point through the runner's window (block fits kept) and in batches: the same
    results, with pairs held by the short mean (routine runs of deviations, and two-point
    blips among them)."""
    n = 3000
    rng = np.random.default_rng(5)
    v = 100 + rng.normal(0, 1, n)
    for start in range(50, n - 10, 90):
        v[start : start + 5] += rng.uniform(2.5, 4.5)
    for b in rng.choice(np.arange(600, n - 5), 30, replace=False):
        v[b : b + 2] += rng.uniform(3.0, 4.5)
    t = np.arange(n, dtype=np.int64) * FIVE_MIN
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    live, window, cached = AutoDetector(Params(), FIVE_MIN), SeriesWindow(10**9, ()), []
    for pt in points:
        cached.append(live.detect(window.history(), pt))
        window.add(pt.time, pt.value, {})
    many = AutoDetector(Params(), FIVE_MIN)
    batched = many.detect_many(History.empty(), points[:700])
    batched += many.detect_many(History(t[:700], v[:700], {}), points[700:])
    assert batched == cached
    off = AutoDetector(Params(pair_mean=0), FIVE_MIN).detect_many(History.empty(), points)
    assert sum(a.score < b.score for a, b in zip(batched, off, strict=True)) >= 1  # it held some
