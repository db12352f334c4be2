"""`auto`'s `pair_seen`: a pair (two in a row beyond the line, not a spike) that one of the
previous days had at about the same time of day, as far from its expected value, is the
series' routine at that hour: held. A pair no previous day had still pages, so does a spike
or a pair that goes on past what the days had; live and in a replay, the same."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autospikes import PAIR_SEEN
from detectkd.detectors.base import Current, History
from tests.support.detectors import live_and_batched
from tests.support.rests import CALM, LINE, held, starts

FIVE_MIN = 300
DAY = 288


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


def pages(t: np.ndarray, v: np.ndarray, params: Params) -> list[int]:
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    flags = np.array([r.anomaly for r in AutoDetector(params, FIVE_MIN).detect_many(History.empty(), points)])
    return np.flatnonzero(flags & ~np.r_[False, flags[:-1]]).tolist()


def test_a_pair_the_previous_days_had_at_that_hour_is_held() -> None:
    for seed in range(3):
        t, v, _ = hourly_bump(12, seed)
        late = 5 * DAY  # once three previous days hold the bump
        off = [k for k in pages(t, v, Params()) if k >= late]
        on = [k for k in pages(t, v, Params(pair_seen=1.0)) if k >= late]
        assert len(off) >= 3, off  # the default pages the bump day after day
        assert len(on) <= 1 and set(on) <= set(off), (on, off)


def test_a_share_below_one_holds_a_pair_somewhat_larger_than_the_days_before() -> None:
    """The days had a bump of 7 spreads; the last day's is 1.2 times it: as far as the days'
    only at a share of 0.75 or less."""
    t, v, bumps = hourly_bump(12, 0)
    last = 11 * DAY + 100
    v[bumps[-1] : bumps[-1] + 2] += 0.2 * 7.0
    assert [k for k in pages(t, v, Params(pair_seen=1.0)) if k >= last]
    assert not [k for k in pages(t, v, Params(pair_seen=0.75)) if k >= last]


def test_a_new_pair_pages_and_the_same_live() -> None:
    """A pair at an hour no previous day had one pages with `pair_seen`; point by point
    through the runner's window and in batches, the same results."""
    t, v, _ = hourly_bump(10, 4)
    new = 9 * DAY + 250  # 20:50, never before (and past the rest of the day's bump)
    v[new : new + 2] += 9.0
    cached, batched = live_and_batched(t, v, Params(pair_seen=1.0), FIVE_MIN)
    assert cached[new + 1 - (t.size - 600)].anomaly  # the pair's second point
    assert batched == cached


def test_a_pair_that_goes_on_pages_at_its_first_point_the_days_did_not_have() -> None:
    """The bump lasts two points on the days before; on the last day it lasts six: held at
    its second point (seen), paged at its third (beyond what any day had there)."""
    t, v, bumps = hourly_bump(12, 1)
    last, bump = 11 * DAY + 100, bumps[-1]
    v[bump + 2 : bump + 6] += 7.0
    on = [k for k in pages(t, v, Params(pair_seen=1.0)) if k >= last]
    assert on and bump + 1 < on[0] <= bump + 5, (on, bump)


def test_only_a_pair_is_held_never_a_spike_after_a_point_beyond_the_line() -> None:
    """Judged after a calm ring with every point marked seen (`PAIR_SEEN`): a pair is held, a
    spike that follows a point beyond the line still alarms (its surprise is its own, not the
    pair's), and without the option the mark does nothing."""
    pair = [CALM, 1.5 * LINE, 1.5 * LINE, CALM]
    spike = [CALM, 1.5 * LINE, 4.0 * LINE, CALM]
    marks = [PAIR_SEEN] * 4
    assert starts(held(pair, marks=marks, pair_seen=1.0)) == []
    assert starts(held(pair, marks=marks)) == [2]
    assert starts(held(spike, marks=marks, pair_seen=1.0)) == [2]


def test_pair_seen_without_spike_jitter_is_refused() -> None:
    """It reads `spike_jitter` minutes either side: with 0 it would be off without a word."""
    with pytest.raises(ValidationError, match="pair_seen needs spike_jitter"):
        Params.model_validate({"pair_seen": 1.0, "spike_jitter": 0})
    with pytest.raises(ValidationError):
        Params.model_validate({"pair_seen": 75})  # a share, not a percentage
    assert Params.model_validate({"pair_seen": 0.75}).pair_seen == 0.75
