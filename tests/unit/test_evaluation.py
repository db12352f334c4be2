"""NAB-style scoring on hand-built files."""

from __future__ import annotations

import math

import numpy as np

from detectkd.evaluation import (
    PROFILES,
    Labelled,
    best_threshold,
    normalised,
    probation,
    scaled_sigmoid,
    score_file,
    window_recall_and_fp,
)

STD = PROFILES["standard"]


def file(n: int, hits: list[int], windows: tuple[tuple[int, int], ...], value: float = 0.9) -> Labelled:
    scores = np.zeros(n)
    scores[hits] = value
    return Labelled("f", scores, windows)


def test_scaled_sigmoid_shape() -> None:
    assert math.isclose(scaled_sigmoid(0.0), 0.0, abs_tol=1e-12)
    assert scaled_sigmoid(-1.0) > 0.98 and scaled_sigmoid(3.5) == -1.0
    assert scaled_sigmoid(-0.5) > scaled_sigmoid(-0.1)  # earlier in the window is worth more
    assert probation(1000) == 150 and probation(10_000) == 750


def test_first_detection_at_window_start_is_a_perfect_score() -> None:
    f = file(1000, [400, 420], ((400, 499),))
    r = score_file(f, 0.5, STD)
    assert (r.tp, r.fn, r.fp) == (1, 0, 0) and math.isclose(r.score, 1.0)
    assert math.isclose(normalised([f], 0.5, STD), 100.0)


def test_missed_window_never_firing_and_false_positives() -> None:
    quiet = file(1000, [], ((400, 499),))
    assert normalised([quiet], 0.5, STD) == 0.0
    assert score_file(quiet, 0.5, STD).fn == 1
    early = file(1000, [300], ((400, 499),))  # before the first window: the full penalty
    r = score_file(early, 0.5, STD)
    assert (r.fp, r.fn) == (1, 1) and math.isclose(r.score, -1.0 - 0.11)
    probationary = file(1000, [100], ((400, 499),))  # inside the first 15 %: ignored
    assert score_file(probationary, 0.5, STD).fp == 0
    just_after = file(1000, [400, 500], ((400, 499),))  # right behind a window: a small penalty
    r2 = score_file(just_after, 0.5, STD)
    assert r2.fp == 1 and -0.11 < r2.score - 1.0 < 0


def test_best_threshold_and_window_recall() -> None:
    f = file(1000, [450], ((400, 499),))
    f.scores[700] = 0.6  # a weaker false positive
    threshold, best = best_threshold([f], STD)
    assert 0.6 < threshold <= 0.9 and best > 40
    recall, fp = window_recall_and_fp([f], 0.5)
    assert recall == 1.0 and math.isclose(fp, 1000 / 750)
