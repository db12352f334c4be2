"""`auto`'s rest margin (`rest_margin`): while resting after an alarm, a pair (persistence: two
in a row beyond the line, not a spike nor a range break) on the alarm's side pages anew only
beyond `rest_margin` times the run's peak, whatever its run — an episode that grows by a few
percent is the same episode. A pair on the other side (a count that dies after a burst) and a
spike still page beyond the peak itself, and once the rest period has passed nothing is held."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors.autoparams import Params
from tests.support.rests import CALM, LINE, episode, held, starts


def test_a_pair_a_little_greater_than_the_peak_pages_only_without_a_margin() -> None:
    tail = episode(10, 1.3)  # a pair at 1.1 lines, then one at 1.3: 1.18 times the peak
    assert starts(held(tail, rest_margin=1.0)) == [2, 14]
    assert starts(held(tail, rest_margin=1.5)) == [2]
    assert max(held(tail, rest_margin=1.5)[13:]) <= 0.5  # held at half the line
    assert starts(held(episode(10, 1.7), rest_margin=1.5)) == [2, 14]  # 1.55 times: news


def test_on_the_other_side_the_peak_is_enough() -> None:
    """A burst, then a drop: the drop is news beyond the burst's peak, as before the margin."""
    down = [0] * 13 + [1, 1] + [0] * 3
    assert starts(held(episode(10, 1.3), down, rest_margin=1.5)) == [2, 14]
    assert starts(held(episode(10, 1.05), down, rest_margin=1.5)) == [2]  # under it


def test_a_long_run_on_the_alarms_side_is_held_within_the_margin() -> None:
    """Whatever its run: on NAB every escalation held this way was a false page."""
    tail = [CALM, 1.1 * LINE, 1.1 * LINE] + [CALM] * 10 + [1.3 * LINE] * 20 + [CALM] * 3
    assert starts(held(tail, rest_margin=1.0)) == [2, 14]
    assert starts(held(tail, rest_margin=1.5)) == [2]


def test_a_spike_between_the_peak_and_the_margin_still_pages() -> None:
    tail = [CALM, 1.8 * LINE, 1.8 * LINE] + [CALM] * 10 + [3.3 * LINE] + [CALM] * 3
    assert starts(held(tail, rest_margin=2.0)) == [2, 13]  # 3.3 < 2 x 1.8, but a spike


def test_after_the_rest_period_a_pair_pages_whatever_the_margin() -> None:
    rest = Params().rest
    assert starts(held(episode(rest + 5, 1.2), rest_margin=2.0)) == [2, rest + 9]
    assert starts(held(episode(rest - 10, 1.2), rest_margin=2.0)) == [2]


def test_a_range_break_between_the_peak_and_the_margin_still_pages() -> None:
    tail = [CALM, 2.5 * LINE, 2.5 * LINE] + [CALM] * 10 + [2.6 * LINE] + [CALM] * 3
    assert starts(held(tail, breaks=[13], rest_margin=1.5)) == [2, 13]  # a break
    assert starts(held(tail, rest_margin=1.5)) == [2]  # the same point, no break


def test_the_margin_is_of_the_runs_peak_not_of_its_last_alarm() -> None:
    """A run at 2 lines, then a weaker point at 1.2 (still an alarm, faded): a pair at 2.8
    lines is within 1.5 times the peak (2), though beyond 1.5 times the last alarm."""
    tail = [CALM, 2 * LINE, 2 * LINE, 1.2 * LINE] + [CALM] * 11 + [2.8 * LINE] * 2 + [CALM] * 3
    assert starts(held(tail, rest_margin=1.5)) == [2]
    assert starts(held(tail[4:], rest_margin=1.5)) == [12]  # without the run: news


@pytest.mark.parametrize("margin", [1.0, 1.5])
def test_a_change_that_stays_beyond_the_line_pages_once(margin: float) -> None:
    """Its run fades below the line; the points after it still count toward the run (they
    fade on), so the rest period's end brings no second page (review: with held points
    starting no run, a constant change paged again every 100 points)."""
    tail = [CALM] + [2 * LINE] * 300 + [CALM] * 3
    assert starts(held(tail, rest_margin=margin)) == [2]


def test_a_run_that_climbs_out_of_the_hold_pages_when_it_does() -> None:
    """A point the hold keeps from starting a run does not count toward one, so a run that
    begins within the hold is not faded when it climbs past it (review: it was, and never
    paged in the rest period). A change still going on keeps fading (the test above)."""
    tail = [CALM, 1.1 * LINE, 1.1 * LINE] + [CALM] * 10 + [1.3 * LINE] * 5 + [1.8 * LINE] * 10 + [CALM] * 3
    assert starts(held(tail, rest_margin=1.5)) == [2, 19]  # the second point at 1.8


def test_a_change_that_begins_within_the_hold_and_outlasts_the_rest_pages_once() -> None:
    """A change at 1.3 lines that begins ten points after an alarm and lasts is held while
    resting and has faded by the rest period's end: no second page (review: with held points
    counting toward no run, it paged again when the rest was over)."""
    tail = [CALM, 1.1 * LINE, 1.1 * LINE] + [CALM] * 10 + [1.3 * LINE] * 300 + [CALM] * 3
    assert starts(held(tail, rest_margin=1.5)) == [2]


@pytest.mark.parametrize("margin", [1.0, 1.5])
@pytest.mark.parametrize("dip", [30, 50, 90])
def test_a_change_that_dips_back_within_the_line_while_resting_pages_once(margin: float, dip: int) -> None:
    """One point within the line ends the run; the change going on after it starts a run the
    hold keeps and the rest period's end finds faded (review: a dip while resting turned into
    a page when the rest was over)."""
    tail = [CALM] + [2 * LINE] * dip + [CALM] + [2 * LINE] * 300 + [CALM] * 3
    assert starts(held(tail, rest_margin=margin)) == [2]


def test_a_dip_after_the_rest_period_is_a_new_run() -> None:
    """What the rest period does not cover: a change that dips back within the line once the
    rest is over pages again when it comes back (the run starts anew)."""
    rest = Params().rest
    tail = [CALM] + [2 * LINE] * (rest + 50) + [CALM] + [2 * LINE] * 20 + [CALM] * 3
    assert starts(held(tail, rest_margin=1.5)) == [2, rest + 53]


def test_a_dip_while_resting_pages_once() -> None:
    """The points the rest holds from starting a run count toward one (review, when a hold of
    aftershocks had its own rule: they did not, so a change it held paged when the rest ended)."""
    tail = [CALM] + [1.5 * LINE] * 90 + [CALM] + [1.5 * LINE] * 60
    assert starts(held(tail)) == [2]
    tail = [CALM] + [2 * LINE] * 19 + [CALM] * 120 + [2 * LINE] * 90 + [CALM] + [2 * LINE] * 60
    assert starts(held(tail)) == [2, 141]  # the second change is a new episode: the rest was over


def test_a_sustained_median_in_a_run_going_on_does_not_page_it_again() -> None:
    """Step 8: a sustained deviation fades and rests like any other alarm (review: a faded run
    restarted by its own sustained median paged twice)."""
    assert starts(held([CALM] + [2 * LINE] * 40, sustain=24)) == [2]


def test_a_change_that_creeps_up_pages_once_without_a_margin() -> None:
    """`rest_margin: 1`: a run going on that grows by half a percent a point is not news at
    each new peak (review: it paged every third point)."""
    tail = [CALM] + [1.2 * LINE * 1.005**k for k in range(60)]
    assert starts(held(tail, rest_margin=1.0)) == [2]


def test_a_spike_on_a_noisy_faded_run_pages() -> None:
    """A run whose |z| varies raises the line to its own level, so some of its points fall
    within it and the run ends: a spike after that is a new run and pages (review: the silent
    spike on a faded run was an exact constant's artifact)."""
    noise = np.random.default_rng(3).normal(1.0, 0.01, 150)
    tail = [CALM] + list(2 * LINE * noise) + [7 * LINE] + [2 * LINE] * 30 + [CALM] * 3
    pages = starts(held(tail, rest_margin=1.5))
    assert pages[0] == 2 and 151 in pages


def test_a_change_that_creeps_up_raises_its_line_and_pages_once() -> None:
    """A run that grows a few percent a point raises the line with it: never a spike on it."""
    tail = [CALM] + [1.5 * LINE * 1.02**k for k in range(150)] + [CALM] * 3
    assert starts(held(tail, rest_margin=1.5)) == [2]
