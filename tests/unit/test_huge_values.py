"""Huge values. `auto`: a value so far from its baseline that its |z| passes single
precision's largest (the ring keeps |z| as float32): kept as that largest, finite, with no
warning, and judged the same live and in a batch (an infinite |z| entered a batch's sorted ring
but not the one a live check sorts anew). `zscore`: a standard deviation without overflow."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo, kept
from detectkd.detectors.base import Current, History
from detectkd.detectors.robust import zscore_baseline
from tests.support.detectors import live_and_batched

STEP = 300


def series() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 3000
    t = np.arange(n, dtype=np.int64) * STEP
    v = 100 + rng.normal(0, 5, n)
    v[n - 500] = v[n - 300] = 1e300  # in the live part, and its |z| in the ring for what follows
    return t, v


def test_a_huge_z_is_judged_the_same_live_and_in_a_batch_without_a_warning() -> None:
    t, v = series()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in cast"
        live, batched = live_and_batched(t, v, Params(), STEP)
    assert live == batched
    assert live[100].anomaly and live[300].anomaly  # both are news (the second after the rest period)


def test_the_ring_keeps_a_huge_z_finite_after_a_check_and_a_rebuild() -> None:
    t, v = series()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked = AutoDetector(Params(), STEP)
        points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
        checked.detect_many(History.empty(), points)
        rebuilt = AutoDetector(Params(), STEP)  # a restart: the state rebuilt from the history
        rebuilt.detect(History(t[:-1], v[:-1], {}), points[-1])
    for det in (checked, rebuilt):
        ring = det._memo["s"].ring()
        assert np.isfinite(ring).all() and ring.max() == np.finfo(np.float32).max


def test_zscore_s_deviation_of_a_window_with_a_huge_value_is_finite_without_a_warning() -> None:
    """DetectK's z-score rule (mean and standard deviation): the square of a deviation of 1e300
    overflowed (numpy's warning at every check); scaled first, the deviation is finite and on
    ordinary values the same as numpy's."""
    rng = np.random.default_rng(1)
    x, w = 100 + rng.normal(0, 5, 500), np.ones(500)
    centre, spread = zscore_baseline(x, w)
    assert centre == pytest.approx(float(np.mean(x))) and spread == pytest.approx(float(np.std(x)))
    x[7] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        centre, spread = zscore_baseline(x, w)
    assert np.isfinite(spread) and spread == pytest.approx(1e300 * np.sqrt(499) / 500, rel=1e-6)
    assert zscore_baseline(np.full(5, 3.0), np.ones(5)) == (3.0, 0.0)


def test_zscore_s_scale_ignores_a_huge_value_of_weight_0() -> None:
    """Review: the deviations were scaled by the largest over every point, those of weight 0 too
    (decayed out of the window's weights): a 1e300 there rounded every other scaled deviation
    to 0, the standard deviation to 0, and an ordinary value paged."""
    rng = np.random.default_rng(2)
    x = 100 + rng.normal(0, 5, 500)
    w = np.ones(500)
    x[0], w[0] = 1e300, 0.0
    centre, spread = zscore_baseline(x, w)
    assert centre == pytest.approx(float(np.mean(x[1:])))
    assert spread == pytest.approx(float(np.std(x[1:])))


def test_the_sorted_ring_a_batch_keeps_holds_what_a_re_sort_of_the_ring_holds() -> None:
    """Review: an infinite |z| pushed into the ring went into the batch's sorted copy (`push`
    keeps it so) but not into a live check's fresh sort (`Memo.sorted` keeps finite |z|): the
    two lines counted different |z|."""
    memo = Memo(50)
    ordered = memo.sorted()
    for az in kept(np.array([1.0, 2.0, 1e300, 3.0])).tolist():
        memo.push(az, ordered)
    assert list(ordered) == list(memo.sorted())
    assert ordered[-1] == np.finfo(np.float32).max


def test_a_snapshot_s_double_precision_ring_is_kept_finite() -> None:
    """Review: a ring stored in double precision (a snapshot's) was cast to single precision
    before it was clipped: numpy's overflow warning and an infinite |z| in the ring."""
    data = np.array([1.0, 2.0, 1e300])
    scalars = (np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memo = Memo.imported(10, data, scalars, sustain=2)
    assert np.isfinite(memo.ring()).all() and np.isfinite(memo.medians).all()
