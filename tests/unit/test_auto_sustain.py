"""`auto`'s sustained deviation (`autosustain`): the median of the last `sustain` |z| beyond
every such median of the series' recent past alarms alone; noise and sparse counts do not
make such records; the cache of medians is the ring's own, whatever the batches."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors import autosustain
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo
from tests.support.detectors import auto_alarms

FIVE_MIN = 300


def alarms(values: np.ndarray, **params: object) -> list[int]:
    return auto_alarms(values, FIVE_MIN, **params)


def test_a_shift_no_single_point_gives_away_alarms_through_the_median() -> None:
    """Two weeks of noise, then five hours 3.25 spreads higher (2.5 with the floor of 3: the
    shift scaled with `min_z`, as are the line it stays below and the min_z / 2 its median must
    pass): no two points in a row beyond the line and none three times beyond it (the point
    channels stay quiet), but the median of the last 24 |z| jumps beyond every median of the
    week before."""
    values = 100 + np.random.default_rng(4).normal(0, 1, 288 * 14)
    before = alarms(values, sustain=0)
    assert alarms(values, sustain=24) == before  # noise makes no record
    values[3500:3560] += 3.25
    assert not [a for a in alarms(values, sustain=0) if 3500 <= a < 3560]
    found = [a for a in alarms(values, sustain=24) if 3500 <= a < 3560]
    assert found and found[0] < 3500 + 24


def test_noise_and_a_sparse_count_make_no_sustained_record() -> None:
    """On Gaussian |z| the median of 24 stays far below a one-in-ten |z|; on a sparse count
    (60 % zeros) it jumps from 0 to a whole count, which is not beyond a one-in-ten |z| there."""
    rng = np.random.default_rng(7)
    for az in (np.abs(rng.normal(0, 1, 20000)), rng.choice([0.0, 1.85, 2.6], 20000, p=[0.6, 0.3, 0.1])):
        out, _ = autosustain.surprises(np.empty(0), np.empty(0), az, 24, 2000, 1.5, 1.1, 50)
        assert not out.any()


@pytest.mark.parametrize("sizes", [[1] * 300, [7, 1, 50, 1, 200, 41], [299, 1]])
def test_the_medians_are_the_rings_own_whatever_the_batches(sizes: list[int]) -> None:
    """Live checks (one point), catch-up and replays (batches) give the same surprises, and the
    cache after them is the medians of the ring (what a restart recomputes)."""
    rng = np.random.default_rng(11)
    az = np.abs(rng.normal(0, 1, 2300))
    az[:30] = np.nan  # a cold start
    az[2100:2140] += 3.0  # a jump of the typical deviation
    whole, _ = autosustain.surprises(
        az[:2000], autosustain.medians(az[:2000], 24), az[2000:], 24, 2000, 1.5, 1.1, 50
    )
    assert whole.any()
    ring, cache = az[:2000], autosustain.medians(az[:2000], 24)
    parts: list[np.ndarray] = []
    done = 2000
    for n in sizes:
        new = az[done : done + n]
        done += n
        out, cache = autosustain.surprises(ring, cache, new, 24, 2000, 1.5, 1.1, 50)
        parts.append(out)
        ring = np.concatenate([ring, new])[-2000:]
        assert np.array_equal(cache, autosustain.medians(ring, 24), equal_nan=True)
    assert np.array_equal(np.concatenate(parts), whole)


def test_a_restart_recomputes_the_medians_from_the_ring() -> None:
    det = AutoDetector(Params(sustain=24, reference=300), FIVE_MIN)
    memo = Memo(300)
    az = np.abs(np.random.default_rng(2).normal(0, 1, 1000))
    det._surprises(memo, az, np.zeros(az.size, bool))
    ring, scalars = memo.export()
    again = Memo.imported(300, ring, scalars, sustain=24)
    assert np.array_equal(again.medians, memo.medians, equal_nan=True)


def test_off_by_default_no_medians_and_the_same_alarms() -> None:
    """`sustain` is an option (0 by default): no medians are kept per series, and the shift the
    option catches alarms exactly as with `sustain: 0`."""
    assert Params().sustain == 0
    det = AutoDetector(Params(reference=300), FIVE_MIN)
    memo = Memo(300)
    az = np.abs(np.random.default_rng(2).normal(0, 1, 1000))
    det._surprises(memo, az, np.zeros(az.size, bool))
    det._rebuild(memo, az, np.zeros(az.size, bool))
    ring, scalars = memo.export()
    for m in (memo, Memo.imported(300, ring, scalars), Memo(300)):
        assert m.medians is autosustain.NONE and m.medians.size == 0
    values = 100 + np.random.default_rng(4).normal(0, 1, 288 * 14)
    values[3500:3560] += 3.25
    assert alarms(values) == alarms(values, sustain=0)
