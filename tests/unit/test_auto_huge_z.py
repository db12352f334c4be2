"""A value so far from its baseline that its |z| passes single precision's largest (the ring
keeps |z| as float32): kept as that largest, finite, with no warning, and judged the same live
and in a batch (an infinite |z| entered a batch's sorted ring but not the one a live check
sorts anew)."""

from __future__ import annotations

import warnings

import numpy as np

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History
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
