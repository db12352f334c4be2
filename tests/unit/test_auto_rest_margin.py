"""`auto`'s rest margin (`rest_margin`): while resting after an alarm, a pair (persistence: two
in a row beyond the line, not a spike nor a range break) whose run is no longer than the
series' runs before the alarm's own pages anew only beyond `rest_margin` times the run's peak —
an episode that grows by a few percent is the same episode. A run that outlasts the series'
bursts (a sustained change) and a spike still page beyond the peak itself, and once the rest
period has passed nothing is held. `rest_pairs` is off here (it holds same-side aftershocks
whatever their surprise): the margin alone."""

from __future__ import annotations

from detectkd.detectors.autoparams import Params
from tests.support.rests import CALM, LINE, episode, held, starts


def test_a_pair_a_little_greater_than_the_peak_pages_only_without_a_margin() -> None:
    tail = episode(10, 1.3)  # a pair at 1.1 lines, then one at 1.3: 1.18 times the peak
    assert starts(held(tail, rest_pairs=0, rest_margin=1.0)) == [2, 14]
    assert starts(held(tail, rest_pairs=0, rest_margin=1.5)) == [2]
    assert max(held(tail, rest_pairs=0, rest_margin=1.5)[13:]) <= 0.5  # held at half the line
    assert starts(held(episode(10, 1.7), rest_pairs=0, rest_margin=1.5)) == [2, 14]  # 1.55 times: news
    down = [0] * 13 + [1, 1] + [0] * 3
    assert starts(held(tail, down, rest_pairs=0, rest_margin=1.5)) == [2]  # either side


def test_a_run_that_outlasts_the_series_bursts_pages_beyond_the_peak_itself() -> None:
    """The series' runs before were two points long: a third point in a row at 1.3 lines is a
    sustained change, news at the peak as before the margin (review: a twenty-point burst soon
    after a spike was held for the whole rest period)."""
    tail = [CALM, 1.1 * LINE, 1.1 * LINE] + [CALM] * 10 + [1.3 * LINE] * 5 + [CALM] * 3
    assert starts(held(tail, rest_pairs=0, rest_margin=1.5)) == [2, 15]
    assert starts(held(tail, burst=5, rest_pairs=0, rest_margin=1.5)) == [2]  # as long as before


def test_a_spike_between_the_peak_and_the_margin_still_pages() -> None:
    tail = [CALM, 1.8 * LINE, 1.8 * LINE] + [CALM] * 10 + [3.3 * LINE] + [CALM] * 3
    assert starts(held(tail, rest_pairs=0, rest_margin=2.0)) == [2, 13]  # 3.3 < 2 x 1.8, but a spike


def test_after_the_rest_period_a_pair_pages_whatever_the_margin() -> None:
    rest = Params().rest
    assert starts(held(episode(rest + 5, 1.2), rest_pairs=0, rest_margin=2.0)) == [2, rest + 9]
    assert starts(held(episode(rest - 10, 1.2), rest_pairs=0, rest_margin=2.0)) == [2]
