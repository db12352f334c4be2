"""`auto` keeps the newest block's baselines packed between live checks (issue 28): the same
values, dtypes and structure unpacked, the same judgements, a fraction of the memory."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import BlockFit, PackedFit, _parts
from detectkd.detectors.base import Current, Result
from detectkd.runtime.windows import SeriesWindow

STEP = 300  # five minutes: the daily cycle is in play


def series(kind: str, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    t = np.arange(n, dtype=np.int64) * STEP + 1_700_000_000 // STEP * STEP
    if kind == "counts":  # whole numbers: the square-root scale, the dispersion model
        v = rng.poisson(3 + 2 * np.sin(2 * np.pi * t / 86400)).astype(np.float64)
    else:
        v = 50 + 20 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 2, n)
        v[rng.random(n) < 0.03] = np.nan
    v[n - 40] = v[n - 41] * 5 + 30  # a spike: a range break
    return t, v


def live(kind: str, params: Params | None = None) -> tuple[list[Result], AutoDetector]:
    """Live checks through a window (the runner's path: the block's fit kept in the memo)."""
    t, v = series(kind)
    det, window = AutoDetector(params or Params(), STEP), SeriesWindow(10**9, ())
    out = []
    for ti, vi in zip(t.tolist(), v.tolist(), strict=True):
        value = None if vi != vi else vi
        out.append(det.detect(window.history(), Current(ti, value, {}, "s")))
        window.add(ti, value, {})
    return out, det


def lined(trend: bool) -> Params:
    """With `trend`, a level window short enough at five minutes for the line (half a day)."""
    return Params(trend=True, window=100) if trend else Params(trend=False)


def same(a: BlockFit, b: BlockFit) -> bool:
    pa, pb = _parts(a), _parts(b)
    return (
        [(s, len(m)) for s, m in a.fits.items()] == [(s, len(m)) for s, m in b.fits.items()]
        and list(a.ranges) == list(b.ranges)
        and list(a.slopes) == list(b.slopes)
        and len(pa) == len(pb)
        and all(x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(pa, pb, strict=True))
    )


@pytest.mark.parametrize("trend", [False, True])
@pytest.mark.parametrize("kind", ["counts", "levels"])
def test_a_packed_fit_unpacks_to_the_same_arrays(kind: str, trend: bool) -> None:
    t, v = series(kind)
    det = AutoDetector(lined(trend), STEP)
    starts = np.searchsorted(t, np.unique(t[-600:] // det.block * det.block))
    fit = det._block_fit(t, v, starts)
    assert fit.fits and fit.ranges  # something of everything to pack
    assert bool(fit.slopes) == trend and all(np.any(s != 0) for s in fit.slopes.values())
    one = fit.newest()
    back = PackedFit(one).unpacked()
    assert same(one, back)
    assert any(x.dtype == bool for x in _parts(back)) and any(x.dtype == np.int64 for x in _parts(back))
    with pytest.raises(ValueError, match="one-block"):
        PackedFit(fit)


@pytest.mark.parametrize("trend", [False, True])
@pytest.mark.parametrize("kind", ["counts", "levels"])
def test_live_checks_with_the_packed_fit_judge_as_a_fresh_fit(kind: str, trend: bool) -> None:
    """The kept fit (packed) against one fitted anew for each point (no memo reuse)."""
    got, det = live(kind, lined(trend))
    memo = det._memo["s"]
    assert memo.packed is not None and memo.fit_key is not None
    t, v = series(kind)
    fresh = AutoDetector(lined(trend), STEP)
    window = SeriesWindow(10**9, ())
    want = []
    for ti, vi in zip(t.tolist(), v.tolist(), strict=True):
        value = None if vi != vi else vi
        h = window.history()
        h = type(h)(h.times, h.values, h.features, 0)  # revision 0: no fit kept, fitted each time
        want.append(fresh.detect(h, Current(ti, value, {}, "s")))
        window.add(ti, value, {})
    assert got == want and any(r.anomaly for r in got)


def test_the_kept_fit_holds_no_view_of_a_larger_fit() -> None:
    _, det = live("levels")
    packed = det._memo["s"].packed
    assert packed is not None
    arrays = list(packed._arrays)
    assert all(a.base is None for a in arrays)  # owns its data: nothing bigger kept alive
    assert sum(a.nbytes for a in arrays) <= 8 * len(_parts(packed.unpacked()))
