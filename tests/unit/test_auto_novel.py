"""`auto`'s line-and-range agreement (`autonovel`, `line_range`, off by default): a lone point
beyond the line but short of a spike alarms when it is also a new extreme of the series' last
`line_range` values; not when a value as far was seen among them; a count must leave its range
by more than one; a live check with `window_seconds` of history (some values missing) gives
what a replay over the long history gives."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History
from tests.support.detectors import auto_alarms

MINUTE = 60
N, AT = 6000, 5500


def calm(seed: int) -> np.ndarray:
    """A gauge around 100 whose deviations stay within 3.2 spreads of 5 (its range: 84-116)."""
    return 100 + 5 * np.clip(np.random.default_rng(seed).normal(0, 1, N), -3.2, 3.2)


def test_a_moderate_point_that_is_a_new_extreme_alarms_with_the_option() -> None:
    """24 above the level (about 4.8 spreads, 1.2 lines: short of a spike) and beyond every
    value of the last 2,000, but short of a range break's margin: 2,200 points before, a 126
    widened the range (`auto`'s range reads about 2,400 values here, `line_range` 2,000).
    Alarms with `line_range`, not without (the default: a lone point under three lines waits
    for a second). (With `min_z` 3 this was a 120 in the calm range alone: 1.3 lines, short of
    its break at 116 + a spread; with the line at 4 spreads, 120, the gap up to that break was
    a fifth of a spread, too narrow for the spread's noise, hence the earlier 126.)"""
    for seed in range(3):
        v = calm(seed)
        v[AT], v[AT - 2200] = 124.0, 126.0
        assert AT not in auto_alarms(v, MINUTE, seasonal=False)  # off by default
        assert AT in auto_alarms(v, MINUTE, seasonal=False, line_range=2000)


def test_a_new_extreme_within_the_margin_does_not_alarm() -> None:
    """`line_margin`: with a 126 among the last 2,000 the range is about 126 - 84 = 42 wide,
    so with 0.05 a new high must pass 126 + 2.1: a 127 (beyond the range by 1) alarms
    without a margin and not with one; a 129 (by 3; short of a spike and of a range break,
    which needs 126 + the larger of 2.1 and a spread, about 5) alarms with it too. The same
    below for a new low."""
    for seed in range(3):
        for sign in (1, -1):  # a new high, then a new low
            v = 100 + sign * (calm(seed) - 100)
            v[AT - 1500] = 100 + sign * 26.0
            v[AT] = 100 + sign * 27.0
            assert AT in auto_alarms(v, MINUTE, seasonal=False, line_range=2000)
            assert AT not in auto_alarms(v, MINUTE, seasonal=False, line_range=2000, line_margin=0.05)
            v[AT] = 100 + sign * 29.0
            assert AT not in auto_alarms(v, MINUTE, seasonal=False)  # no range break: the option's
            assert AT in auto_alarms(v, MINUTE, seasonal=False, line_range=2000, line_margin=0.05)


def test_a_positive_gauge_judged_on_its_log_scale_needs_a_margin_of_the_ratio() -> None:
    """`line_log`: a log-normal gauge around 100 (its values 61-165) with a 190 among the last
    2,000: a 199 passes the range by 9, more than 0.05 of its width (6.5), so it alarms with
    `line_margin` alone; on the log scale 0.05 of the width is a ratio of 1.06 (202), so
    with `line_log` it does not, and a 205 does."""
    params = {"seasonal": False, "line_range": 2000, "line_margin": 0.05}
    for seed in range(3):
        v = 100 * np.exp(0.2 * np.clip(np.random.default_rng(seed).normal(0, 1, N), -2.5, 2.5))
        v[AT - 1500], v[AT] = 190.0, 199.0
        assert AT not in auto_alarms(v, MINUTE, seasonal=False)  # no range break, no spike
        assert AT in auto_alarms(v, MINUTE, **params)
        assert AT not in auto_alarms(v, MINUTE, **params, line_log=True)
        v[AT] = 205.0
        assert AT in auto_alarms(v, MINUTE, **params, line_log=True)


def test_a_moderate_point_seen_in_the_range_does_not_alarm() -> None:
    """The same point when a value as high was among the last 2,000 (1,500 points before, and
    above the line then: an alarm of its own or not, it is in the range) is no new extreme."""
    for seed in range(3):
        v = calm(seed)
        v[AT], v[AT - 1500] = 124.0, 125.0
        assert AT not in auto_alarms(v, MINUTE, seasonal=False, line_range=2000)


def test_a_count_must_leave_its_range_by_more_than_one() -> None:
    """Errors per minute of 0-3 (a new 4 is one above the range: no news however the line
    judges it); a 9 is beyond it."""
    rng = np.random.default_rng(5)
    v = np.minimum(rng.poisson(0.4, N), 3).astype(float)
    v[AT] = 4.0
    four = auto_alarms(v, MINUTE, seasonal=False, line_range=2000)
    assert AT not in [a for a in four if a not in auto_alarms(v, MINUTE, seasonal=False)]
    v[AT] = 9.0
    assert AT in auto_alarms(v, MINUTE, seasonal=False, line_range=2000)


@pytest.mark.parametrize(
    ("margins", "alarms"),
    [({}, (7400, 8600)), ({"line_margin": 0.05}, (7400, 8600))],
)
def test_new_extremes_are_the_same_live_and_in_a_replay(
    margins: dict[str, float], alarms: tuple[int, ...]
) -> None:
    """Live: each check with only `window_seconds` (+ one interval) of history, by time, a quarter of
    the values missing (2,000 values then reach further back than the window: the range is of
    those within it: a replay reading 2,000 values would find 124 before 123 and hold it);
    replay: `detect_many` over the long history. The same results, and the moderate new
    extremes alarm in both, with a margin of 0.05 of the range too."""
    step = MINUTE
    p = Params.model_validate({"seasonal": False, "line_range": 2000} | margins)
    rng = np.random.default_rng(11)
    t = np.arange(N + 3000, dtype=np.int64) * step
    v = 100 + 5 * np.clip(rng.normal(0, 1, t.size), -3.2, 3.2)
    v[rng.random(t.size) < 0.25] = np.nan
    v[7400], v[8600] = 123.0, 126.0  # each a new high of the window
    v[7400 - 2450] = 124.0  # among the last 2,000 values before 7400, not within the window
    start = 6000
    points = [Current(int(a), None if b != b else float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    det = AutoDetector(p, step)
    span = det.window_seconds(step) + step
    lo = int(np.searchsorted(t, t[start] - span + 1))
    replay = AutoDetector(p, step).detect_many(History(t[:start], v[:start], {}), points[start:])
    live = []
    for i in range(start, t.size):
        lo = int(np.searchsorted(t, t[i] - span + 1))  # the window: `span` back, by time
        live += det.detect_many(History(t[lo:i], v[lo:i], {}), points[i : i + 1])
    assert live == replay
    assert [k for k in (7400, 8600) if replay[k - start].anomaly] == list(alarms)


def test_margins_without_the_new_extremes_they_act_on_are_refused() -> None:
    """`line_margin` and `line_log` change only `line_range`'s test; `line_log` only its
    margin (a logarithm keeps every order): set alone, each would be off without a word."""
    from pydantic import ValidationError

    for alone in ({"line_margin": 0.05}, {"line_log": True}, {"line_range": 2000, "line_log": True}):
        with pytest.raises(ValidationError, match="set line_"):
            Params.model_validate(alone)
    assert Params.model_validate({"line_range": 2000, "line_margin": 0.05, "line_log": True}).line_log
