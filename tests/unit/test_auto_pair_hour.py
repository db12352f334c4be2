"""`auto`'s `pair_hour` (1.0, the default): a pair (two in a row beyond the line, not a spike)
is held where the series' residuals ran as large at about that hour on a day before — one of
the ring's |z| a whole number of days back, within half an hour, at least the pair's. A pair
at an hour that never ran so still pages, so does a spike; live, in a replay and in a
rebuild, the same."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo, ring_array
from tests.support.detectors import auto_alarms, live_and_batched, same_state
from tests.support.rests import CALM, LINE, starts

FIVE_MIN = 300
DAY = 288
OFF = Params(pair_hour=0)


def hourly_bump(days: int, seed: int, size: float = 7.0) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Five-minute points of a calm gauge (spread 1) with a daily bump of `size` spreads for
    two points at about 10:00, its time jittering by up to 20 minutes from day to day (the
    seasonal median of the same time three days back misses it): a pair, every day. Also the
    index of each day's bump."""
    rng = np.random.default_rng(seed)
    v, bumps = 40 + rng.normal(0, 1, days * DAY), []
    for d in range(days):
        bumps.append(at := d * DAY + 120 + int(rng.integers(-4, 5)))
        v[at : at + 2] += size
    return np.arange(v.size, dtype=np.int64) * FIVE_MIN, v, bumps


def judged_after(ring: np.ndarray, tail: list[float], **params: object) -> np.ndarray:
    """The surprises of the |z| `tail` judged after the ring `ring` (five-minute points: a
    day is 288 of them), without the short mean."""
    det = AutoDetector(Params.model_validate({"pair_mean": 0} | params), FIVE_MIN)
    memo = Memo(2000)
    memo.recent = ring_array(ring)
    return det._surprises(memo, np.asarray(tail), np.zeros(len(tail), np.int8))[0]


CALM_RING = np.abs(np.random.default_rng(1).normal(0, 1, 2000))
PAIR = [CALM, 1.5 * LINE, 1.5 * LINE, CALM]
A_DAY_BACK = 2000 + 2 - DAY  # the pair's second point is the 2,002nd judged: its ring index a day back


@pytest.mark.parametrize("where", [0, 6, -6])
def test_a_pair_whose_hour_ran_as_large_a_day_before_is_held(where: int) -> None:
    """A day back within 30 minutes (6 points) either side, a |z| as large holds it; one a
    little smaller, or one 7 points off, does not; a share of 0.75 takes the smaller."""
    ring = CALM_RING.copy()
    ring[A_DAY_BACK + where] = 1.5 * LINE
    assert starts(judged_after(ring, PAIR, pair_hour=0)) == [2]  # off: it pages
    assert starts(judged_after(ring, PAIR)) == []  # the default
    ring[A_DAY_BACK + where] = 1.3 * LINE
    assert starts(judged_after(ring, PAIR)) == [2]
    assert starts(judged_after(ring, PAIR, pair_hour=0.75)) == []
    for off in (7, -7) if where == 0 else (7 if where > 0 else -7,):  # just outside the half hour
        ring = CALM_RING.copy()
        ring[A_DAY_BACK + where + off] = 2.0 * LINE
        assert starts(judged_after(ring, PAIR)) == [2]


def test_a_rebuild_holds_the_pairs_the_loop_holds() -> None:
    """Five-minute |z| with a burst of two at about the same hour every day (so the bulk
    replay of a rebuild meets pairs whose hour ran as large): the rebuilt state is the
    per-point loop's, and the hold acted (the pages differ from `pair_hour: 0`'s)."""
    rng = np.random.default_rng(7)
    z = np.abs(rng.normal(0, 1, 4000))
    for d in range(1, 4000 // DAY):
        at = d * DAY + 100 + int(rng.integers(-4, 5))
        z[at : at + 2] = 1.3 * LINE + rng.random(2)
    flags = np.zeros(z.size, np.int8)
    on, off = AutoDetector(Params(), FIVE_MIN), AutoDetector(OFF, FIVE_MIN)
    for tail in (600, 2000):
        want = Memo(2000)
        want.recent = ring_array(z[4000 - tail - 2000 : 4000 - tail])
        got_on = on._surprises(want, z[4000 - tail :], flags[4000 - tail :])[0]
        rebuilt = Memo(2000)
        on._rebuild(rebuilt, z, flags, tail)
        same_state(rebuilt, want)
        other = Memo(2000)
        other.recent = ring_array(z[4000 - tail - 2000 : 4000 - tail])
        got_off = off._surprises(other, z[4000 - tail :], flags[4000 - tail :])[0]
        assert len(starts(got_on)) < len(starts(got_off))


def test_a_spike_is_never_held_by_the_hour() -> None:
    """A spike after a point beyond the line (its surprise its own, not a pair's) alarms
    though the hour ran as large a day before."""
    ring = CALM_RING.copy()
    ring[A_DAY_BACK] = 5.0 * LINE
    assert starts(judged_after(ring, [CALM, 1.5 * LINE, 4.0 * LINE, CALM])) == [2]
    assert starts(judged_after(ring, PAIR)) == []


def test_the_daily_bump_is_held_and_a_new_pair_pages_the_same_live() -> None:
    """The daily bump at about 10:00 pages day after day without the option and at most once
    after the first days with it (its |z| ran as large there a day or more before); a pair at
    a new hour pages; live = batched."""
    for seed in range(3):
        _, v, _ = hourly_bump(12, seed)
        late = 5 * DAY
        off = [k for k in auto_alarms(v, FIVE_MIN, pair_hour=0) if k >= late]
        on = [k for k in auto_alarms(v, FIVE_MIN) if k >= late]
        assert len(off) >= 3 and len(on) <= 1 and set(on) <= set(off), (on, off)
    t, v, _ = hourly_bump(10, 4)
    new = 9 * DAY + 250  # 20:50, never before (and past the rest of the day's bump)
    v[new : new + 2] += 9.0
    cached, batched = live_and_batched(t, v, Params(), FIVE_MIN)
    assert cached[new + 1 - (t.size - 600)].anomaly  # the pair's second point
    assert batched == cached


def test_a_pair_at_the_hour_of_a_change_the_baselines_lag_still_pages() -> None:
    """What the values' reading (`pair_seen`, removed) got wrong: a gauge that climbs to 60
    at 10:00 every day, its baselines following within the hour (the |z| a day back at that
    hour stay small), then one day at 10:00 goes to 60 and a pair 8 spreads beyond it: the
    values a day back at that hour were as far from today's expected value, the residuals
    were not, so it pages."""
    rng = np.random.default_rng(2)
    n = 10 * DAY
    hour = (np.arange(n) % DAY) // 12
    v = np.where((hour >= 10) & (hour < 14), 60.0, 40.0) + rng.normal(0, 1, n)
    at = 9 * DAY + 10 * 12 + 6  # 10:30 on the last day, inside the daily high
    v[at : at + 2] += 8.0
    found = auto_alarms(v, FIVE_MIN)
    assert any(at <= k <= at + 1 for k in found), found


def test_the_days_back_are_those_the_ring_reaches() -> None:
    """Three days at five minutes, one at one minute, three at an hour (the same hour only);
    a ring that reaches a day back only in part (1,450 one-minute points: the window of
    1,410-1,470 back) still reads what it holds of it."""
    from detectkd.detectors.autopairs import hour_window

    assert hour_window(300, Params()) == (288, 6, 3)
    assert hour_window(60, Params()) == (1440, 30, 1)
    assert hour_window(3600, Params()) == (24, 0, 3)
    assert hour_window(60, Params(reference=1450)) == (1440, 30, 1)
    assert hour_window(60, Params(reference=1400)) is None
    assert hour_window(60, Params(pair_hour=0)) is None
