"""`auto`'s long memory of |z| (`long_days`, `autolong`): the line is at least the largest |z| of
about the last `long_days` days. A series whose bursts of one height recur less often than its
ring of |z| remembers stops paging on them; a larger excursion still pages, so does a count
that drops; the memory goes through the restart snapshot and a rebuild from the store."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autolong import BINS, LongTail
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo
from detectkd.detectors.base import Current, History, Result
from detectkd.runtime import snapshot
from detectkd.runtime.memory import Saved
from tests.support.detectors import auto_alarms

FIVE_MIN, DAY = 300, 288


def starts(surprises: np.ndarray) -> list[int]:
    on = surprises >= 1
    return np.flatnonzero(on & ~np.r_[False, on[:-1]]).tolist()


def bursts(heights: dict[int, float], n: int = 12_000) -> np.ndarray:
    """Calm |z| (half-normal) with a pair of `heights[i]` at points i, i + 1."""
    az = np.abs(np.random.default_rng(7).normal(0, 1, n))
    for i, h in heights.items():
        az[i : i + 2] = h
    return az


def held(az: np.ndarray, **params: object) -> np.ndarray:
    det = AutoDetector(Params.model_validate(params), FIVE_MIN)
    return det._surprises(Memo(det.p.reference), az, np.zeros(az.size, np.int8))[0]


EVERY = {1000: 6.0, 4000: 6.0, 7000: 6.0, 10000: 6.0}  # every 10.4 days: the ring forgets


def test_recurring_bursts_of_one_height_stop_paging() -> None:
    assert Params().long_days == 0  # off by default
    assert starts(held(bursts(EVERY))) == [1001, 4001, 7001, 10001]
    assert starts(held(bursts(EVERY), long_days=14)) == [1001]
    # A pair counts twice: two half-lives. Three days each: forgotten before the next one.
    assert starts(held(bursts(EVERY), long_days=3)) == [1001, 4001, 7001, 10001]


def test_a_new_larger_excursion_still_pages() -> None:
    larger = EVERY | {11_000: 7.0}
    assert starts(held(bursts(larger), long_days=14)) == [1001, 11001]
    assert starts(held(bursts(EVERY | {11_000: 6.04}), long_days=14)) == [1001]  # in 6's bin (to 6.05)


def test_the_line_is_the_largest_recent_z_and_forgets_it_by_halves() -> None:
    t = LongTail(100.0)
    assert t.line() == 0.0
    t.add(math.nan)
    t.add(1.0)
    assert t.line() == 0.0 and t.n == 2
    t.add(5.0)
    assert 5.0 < t.line() <= 5.0 * 1.06
    for _ in range(99):
        t.add(0.5)
    assert t.line() > 5.0  # weight 2^-99/100 > 1/2
    t.add(0.5)
    assert t.line() == 0.0  # one half-life: below one half
    for _ in range(5000):  # rescaled on the way: the weights stay finite
        t.add(3.0)
    assert np.isfinite(t.bins).all() and 3.0 < t.line() <= 3.0 * 1.06
    bulk = LongTail(100.0)
    bulk.extend(np.r_[math.nan, 1.0, 5.0, [0.5] * 100, [3.0] * 5000])
    assert bulk.n == t.n and bulk.line() == t.line()


def dying(seed: int = 0, days: int = 24) -> np.ndarray:
    """A bursty count (mean 30) with a burst of 2.5 times the level every ten days, and at the
    end twenty points at 0 (the count died)."""
    rng = np.random.default_rng(seed)
    mu = np.full(DAY * days, 30.0)
    for s in range(DAY * 2, mu.size - DAY, DAY * 10):
        mu[s : s + 3] *= 2.5
    values = rng.poisson(rng.gamma(10.0, 0.1 * mu)).astype(float)
    values[-20:] = 0.0
    return values


def test_a_count_drop_still_pages() -> None:
    values = dying()
    alarms = auto_alarms(values, FIVE_MIN, long_days=14)
    assert alarms and values.size - 20 <= alarms[-1] <= values.size - 18


def judged(det: AutoDetector, times: np.ndarray, values: np.ndarray, frm: int, to: int) -> list[Result]:
    out: list[Result] = []
    for i in range(frm, to):
        h = History(times[:i], values[:i], {})
        out.extend(det.detect_many(h, [Current(int(times[i]), float(values[i]), {}, "s")]))
    return out


def test_the_long_memory_goes_through_the_snapshot(tmp_path: Path) -> None:
    values = dying(1, days=12)[: DAY * 11]
    times = np.arange(values.size, dtype=np.int64) * FIVE_MIN
    p = Params(long_days=14)
    running = AutoDetector(p, FIVE_MIN)
    cut = values.size - 40
    running.detect_many(
        History.empty(),
        [Current(int(t), float(v), {}, "s") for t, v in zip(times[:cut], values[:cut], strict=True)],
    )
    state = running.export_state("s")
    assert state is not None and len(state[1]) == 7 + 2 + BINS
    saved = Saved("fp", 0)
    saved.states = {"auto": {"s": state}}
    snapshot.save(tmp_path / snapshot.FILE, {"m": saved})  # the restart snapshot's file
    data, scalars = snapshot.load(tmp_path / snapshot.FILE)["m"].states["auto"]["s"]
    assert scalars == state[1]
    restarted = AutoDetector(p, FIVE_MIN)
    restarted.import_state("s", data, scalars)
    kept, got = running._memo["s"].long, restarted._memo["s"].long
    assert kept is not None and got is not None and kept.line() > 0
    assert (got.n, got.origin, got.line()) == (kept.n, kept.origin, kept.line())
    assert np.array_equal(got.bins, kept.bins)
    assert judged(restarted, times, values, cut, values.size) == judged(
        running, times, values, cut, values.size
    )
    with pytest.raises(ValueError):
        AutoDetector(Params(), FIVE_MIN).import_state("s", *state)  # long memory off: another state


def test_a_rebuild_from_the_store_replays_the_long_memory() -> None:
    """A start without a snapshot judges every point it can of the stored history (not only the
    last `rebuild`) into the long memory, the calm ones in bulk: the same line as a detector that
    judged them one by one, within a bin."""
    values = dying(2, days=29)[:-20]
    times = np.arange(values.size, dtype=np.int64) * FIVE_MIN
    p = Params(long_days=14)
    det = AutoDetector(p, FIVE_MIN)
    assert det.rebuild_points > p.rebuild
    h = History(times[:-1], values[:-1], {})
    det.detect_many(h, [Current(int(times[-1]), float(values[-1]), {}, "s")])
    rebuilt = det._memo["s"].long
    assert rebuilt is not None and rebuilt.n > p.rebuild
    first = values.size - 1 - det.rebuild_points
    replayed = AutoDetector(p, FIVE_MIN)
    start = max(first, 0)
    pts = [Current(int(t), float(v), {}, "s") for t, v in zip(times[start:], values[start:], strict=True)]
    replayed.detect_many(History(times[:start], values[:start], {}), pts)
    one = replayed._memo["s"].long
    assert one is not None and one.line() > 0
    assert abs(math.log(rebuilt.line() / one.line())) <= math.log(1.061)
