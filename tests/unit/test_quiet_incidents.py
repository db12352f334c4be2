"""The incidents of benchmarks/quiet_incidents.py and their count of caught, late and false."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.quiet_incidents import INCIDENTS, SCORED_FROM, SPAN, inject, place, tally, wake_row
from benchmarks.quiet_series import COUNTS, DAY, KINDS, WEEKS, at_step, generate


@pytest.mark.parametrize("kind", KINDS)
def test_incidents_are_seeded_in_the_scored_weeks_and_a_day_apart(kind: str) -> None:
    starts = place(kind, 3)
    assert np.array_equal(starts, place(kind, 3))
    assert not np.array_equal(starts, place(kind, 4))
    assert starts.size == INCIDENTS
    assert starts.min() >= SCORED_FROM
    assert starts.max() + 2 * SPAN[kind] <= WEEKS * 7 * DAY  # the grace too is in the series
    assert (np.diff(starts) >= DAY).all()


def test_too_many_incidents_for_the_scored_weeks_are_refused() -> None:
    with pytest.raises(ValueError):
        place("cpu", 0, n=22)  # 21 scored days hold 21 starts a day apart at most


@pytest.mark.parametrize("kind", KINDS)
def test_injection_is_deterministic_and_only_changes_the_incidents(kind: str) -> None:
    minute = generate(kind, 5)
    starts = place(kind, 5)
    a, b = inject(kind, 5, minute, starts), inject(kind, 5, minute, starts)
    assert np.array_equal(a, b)
    inside = np.zeros(minute.size, dtype=bool)
    for s in starts.tolist():
        inside[s : s + SPAN[kind]] = True
    assert np.array_equal(a[~inside], minute[~inside])
    assert not inside[:SCORED_FROM].any()  # nothing in the warm-up
    ratio = a[inside].mean() / minute[inside].mean()
    want = {"requests": 0.5, "latency": 2.0, "errors": 10.0, "bursty": 3.0}
    if kind == "cpu":
        assert np.allclose(a[inside], np.minimum(minute[inside] + 30.0, 100.0))
    else:
        # 6 x 10-20 draws: near the factor, not on it (errors: few counts, a wide band)
        assert ratio == pytest.approx(want[kind], rel=0.5 if kind == "errors" else 0.2)
    if kind in COUNTS:
        assert np.array_equal(a, np.round(a)) and (a >= 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_five_minutes_of_an_injected_series_differ_only_where_an_incident_is(kind: str) -> None:
    """The five-minute series sees the incidents the one-minute draws were given, in the
    periods that overlap them and nowhere else."""
    clean = generate(kind, 1)
    starts = place(kind, 1)
    five, five_clean = at_step(kind, inject(kind, 1, clean, starts), 300), at_step(kind, clean, 300)
    period = np.arange(five.size) * 5
    for s in starts:
        over = (period < s + SPAN[kind]) & (period + 5 > s)
        assert not np.allclose(five[over], five_clean[over])
    hit = np.zeros(five.size, bool)
    for s in starts:
        hit |= (period < s + SPAN[kind]) & (period + 5 > s)
    assert np.array_equal(five[~hit], five_clean[~hit])


def one_minute_column(pages: list[int]) -> np.ndarray:
    notified = np.zeros(WEEKS * 7 * DAY)
    notified[pages] = 1.0
    return notified


def test_caught_late_missed_and_false_are_counted_on_a_hand_made_column() -> None:
    span = 10
    a, b, c = SCORED_FROM + 100, SCORED_FROM + DAY + 100, SCORED_FROM + 2 * DAY + 100
    pages = [
        a - 1,  # the minute before a's window: false
        a + 3,  # caught, 4 minutes from the start to the end of this minute
        a + 5,  # a second page in the same window: not false, not a second catch
        b + span + 2,  # in b's grace: caught late, delay 13
        c + 2 * span,  # just after c's window: c missed, and a false page
        SCORED_FROM - 1,  # in the warm-up: not counted
    ]
    t = tally(one_minute_column(pages), 60, np.array([a, b, c]), span)
    assert t.delays == (4, 13, None)
    assert t.caught == 2
    assert t.late == 1
    assert t.false == 2
    assert t.days == 21.0
    assert t.gaps == (None, DAY, DAY)  # points since the incident before started


def test_the_wake_table_bins_incidents_by_the_points_since_the_one_before() -> None:
    """The gaps are in the series' points (five minutes: a day is 288), and each cell counts
    the incidents caught of those in its bin: first, <1,000, 1,000-2,000, 2,000-4,000, more."""
    starts = SCORED_FROM + np.array([0, 500 * 5, 500 * 5 + 1500 * 5, 500 * 5 + 5500 * 5])
    notified = np.zeros(WEEKS * 7 * DAY // 5)
    for s in starts[[0, 2]]:
        notified[s // 5 + 1] = 1.0
    t = tally(notified, 300, starts, 15)
    assert t.gaps == (None, 500, 1500, 4000)
    assert t.delays[1] is None and t.delays[3] is None
    cells = wake_row("all", 300, [t]).split()
    assert cells[3:] == ["1/1", "0/1", "1/1", "0/0", "0/1"]
    # Starts not on a five-minute boundary: the gap is between the points that hold them
    # (review: minutes // 5 came out a point short when the later start sat earlier in its point).
    a = SCORED_FROM + 4
    assert tally(notified, 300, np.array([a, a + 4997]), 15).gaps == (None, 1000)


def test_at_five_minutes_a_period_overlapping_the_start_is_in_the_window() -> None:
    span, start = 15, SCORED_FROM + 502  # not on a five-minute boundary
    notified = np.zeros(WEEKS * 7 * DAY // 5)
    notified[start // 5] = 1.0  # the period of minutes 500-504, which holds the start
    notified[(start - 5) // 5] = 1.0  # 495-499, before it: false
    t = tally(notified, 300, np.array([start]), span)
    assert t.delays == (3,)  # the period ends at 505, 3 minutes after the start
    assert (t.late, t.false) == (0, 1)
    notified[:] = 0.0
    notified[(start + 2 * span) // 5] = 1.0  # 530-534 overlaps the window's last minute, 531
    late = tally(notified, 300, np.array([start]), span)
    assert late.delays == (33,) and late.late == 1 and late.false == 0
