"""`auto`'s rest period reads the side of the last alarm: while resting, a pair (two in a row
beyond the line, not a spike nor a range break) on the alarm's side needs `rest_margin` times
the run's peak — a bursty count's aftershock is the same episode, not a new page — while a pair
on the other side (a count that dies after a burst) and a spike page beyond the peak itself.
The side is kept per series: the same judged one point at a time, in one pass and rebuilt."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo, ring_array
from tests.support.detectors import auto_alarms
from tests.support.rests import CALM, FIVE_MIN, LINE, episode, held, starts

DAY = 288


def test_a_spike_beyond_the_peak_still_pages_in_the_rest() -> None:
    assert starts(held(episode(10, 0.0, spike=4.0), rest_margin=1.5)) == [2, 13]


def test_a_pair_on_the_other_side_still_pages() -> None:
    """A count that bursts, then dies: the drop is news, not an aftershock."""
    tail = episode(10, 1.5)  # 1.36 times the peak: within the margin on the alarm's side
    down = [0] * 13 + [1, 1] + [0] * 3
    assert starts(held(tail, rest_margin=1.5)) == [2]
    assert starts(held(tail, down, rest_margin=1.5)) == [2, 14]
    assert starts(held(tail, [1 - d for d in down], rest_margin=1.5)) == [2, 14]  # a drop, then a burst
    assert starts(held(tail, [1] * len(tail), rest_margin=1.5)) == [2]  # a drop, then a deeper drop: held


def episodic(seed: int, days: int = 21) -> np.ndarray:
    """A bursty count (negative binomial, mean 30, a = 0.1, five-minute points) with an episode
    every day and a half: a burst of 1.8-2.4 times the level for three points, then two more,
    each 1.3-1.8 times the one before, 6-30 points apart."""
    rng = np.random.default_rng(seed)
    mu = np.full(DAY * days, 30.0)
    for s in range(DAY, mu.size - DAY // 2, DAY * 3 // 2):
        s += int(rng.integers(0, 60))
        k = rng.uniform(1.8, 2.4)
        mu[s : s + 3] *= k
        for _ in range(2):
            s += int(rng.integers(6, 30))
            k *= rng.uniform(1.3, 1.8)
            mu[s : s + 3] *= k
    return rng.poisson(rng.gamma(10.0, 0.1 * mu)).astype(float)


def test_a_sustained_burst_soon_after_an_alarm_pages_beyond_the_margin() -> None:
    """The same bursty count: twenty points at ten times the level (no higher than its bursts
    reach, so no range break) twenty points after an episode's alarm (a pair at 1.13 lines: the
    burst is about 1.25 times it). Without a margin (`rest_margin` 1) it is a greater surprise
    and pages at once; with the default (1.5) a pair on the alarm's side within 1.5 times its
    peak is the same episode, held through the rest period (on NAB such escalations were false
    pages every time); one beyond the series' range is a break and pages at once."""
    values = episodic(0)
    first = auto_alarms(values, FIVE_MIN)[-1]
    values[first + 20 : first + 40] = 300.0
    assert values[:first].max() > 300
    found = [a - first for a in auto_alarms(values, FIVE_MIN, rest_margin=1.0) if a > first]
    assert found and found[0] < 30
    assert not [a for a in auto_alarms(values, FIVE_MIN) if a > first]  # the margin holds it
    values[first + 20 : first + 40] = 400.0  # beyond the range before (320): news at once
    assert [a - first for a in auto_alarms(values, FIVE_MIN) if a > first][:1] == [20]


def test_a_stuck_alarm_arms_no_side() -> None:
    """A stuck run alarms whatever its |z| (`brk & 2`): a point within the line has no side,
    so it arms none (review: it recorded +1, as if a burst above the baseline); beyond the
    line it arms the point's. (At the spike level, the rest holds any pair after it anyway.)"""
    det = AutoDetector(Params.model_validate({"pair_mean": 0}), FIVE_MIN)
    for z, want in ((0.4, 0), (-0.4, 0), (1.1 * LINE, 1), (-1.1 * LINE, -1)):
        memo = Memo(2000)
        memo.recent = ring_array(np.abs(np.random.default_rng(1).normal(0, 1, 2000)))
        found = det._surprises(memo, np.array([CALM, z, CALM]), np.array([0, 2, 0], np.int8))[0]
        assert starts(found) == [1]  # a stuck run alarms alone (at spike: the rest holds pairs)
        assert memo.side == want  # beyond the line, the side of the point; within it none


@pytest.mark.parametrize("margin", [1.0, 1.5])
def test_the_rest_and_the_side_are_the_same_point_by_point_and_in_a_rebuild(margin: float) -> None:
    """300 seeds of bursty signed z (episodes of three bursts of 1-5 points on either side,
    each greater than the one before, and stuck flags): the surprises judged one point at a
    time (a live check) are those of one pass, and a rebuild's bulk replay leaves the same
    state, the side of the last alarm included; alarms arm sides, and the margin changes the
    pages of some of them."""
    from tests.support.detectors import same_state

    det = AutoDetector(Params(pair_mean=0, rest_margin=margin), FIVE_MIN)
    other_margin = AutoDetector(Params(pair_mean=0, rest_margin=2.5 - margin), FIVE_MIN)
    changed = sides = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        z = rng.normal(0, 1, 2600)
        for s in rng.integers(0, 2400, 8):  # episodes: a burst, then two more, each greater
            k = rng.choice([-1.0, 1.0]) * rng.uniform(3, 5)
            for _ in range(3):
                z[s : s + int(rng.integers(1, 6))] = k
                s, k = s + int(rng.integers(6, 60)), k * rng.uniform(1.2, 1.8)
        breaks = (2 * (rng.random(z.size) < 0.003)).astype(np.int8)
        one = Memo(2000)
        one.recent = ring_array(np.abs(z[:2000]))
        whole = det._surprises(one, z[2000:], breaks[2000:])[0]
        step = Memo(2000)
        step.recent = ring_array(np.abs(z[:2000]))
        each = [det._surprises(step, z[k : k + 1], breaks[k : k + 1])[0][0] for k in range(2000, 2600)]
        assert np.array_equal(whole, np.array(each))
        same_state(step, one)
        rebuilt = Memo(2000)
        det._rebuild(rebuilt, z, breaks, tail=600)  # the bulk replay
        same_state(rebuilt, one)
        sides += one.side != 0
        other = Memo(2000)
        other.recent = ring_array(np.abs(z[:2000]))
        changed += starts(other_margin._surprises(other, z[2000:], breaks[2000:])[0]) != starts(whole)
    assert changed > 10 and sides > 20
