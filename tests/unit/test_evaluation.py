"""NAB-style scoring on hand-built files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from detectkd.evaluation import (
    PROFILES,
    Labelled,
    best_threshold,
    leave_one_group_out,
    normalised,
    pooled,
    probation,
    scaled_sigmoid,
    score_file,
    sweep,
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


def test_sweep_agrees_with_scoring_at_every_threshold() -> None:
    rng = np.random.default_rng(5)
    files = [
        Labelled("a", rng.random(1000), ((300, 360), (500, 540), (545, 600))),
        Labelled("b", rng.random(800), ((700, 780),)),
        Labelled("c", rng.random(500), ()),
    ]
    for weights in PROFILES.values():
        thresholds, totals = sweep(files, weights)
        assert thresholds[0] == math.inf and list(thresholds) == sorted(thresholds, reverse=True)
        for t, total in list(zip(thresholds, totals, strict=True))[::37]:
            assert math.isclose(total, sum(score_file(f, t, weights).score for f in files), abs_tol=1e-9)


def test_leave_one_group_out_chooses_the_threshold_on_the_other_groups() -> None:
    # group "x" is only right at 0.9, group "y" only at 0.6: each held-out group is scored at
    # the other's threshold
    x = file(1000, [450], ((400, 499),))
    x.scores[800] = 0.6
    y = file(1000, [], ((400, 499),))
    y.scores[[420, 600]] = [0.6, 0.3]
    held = leave_one_group_out({"x": [x], "y": [y]}, STD)
    assert held["x"].threshold == 0.6 and held["y"].threshold == 0.9
    assert held["y"].score == 0.0 and held["y"].detections == 0
    assert held["x"].detections == 2 and 0 < held["x"].score < 100
    assert math.isclose(pooled(held, STD), (held["x"].score + held["y"].score) / 2)


REFERENCE = Path(__file__).parent / "data" / "nab_numenta_speed_7578.csv"
SPEED_7578_WINDOWS = (  # NAB's labels for realTraffic/speed_7578.csv
    ("2015-09-11 15:34:00", "2015-09-11 17:54:00"),
    ("2015-09-15 13:26:00", "2015-09-15 15:54:00"),
    ("2015-09-16 13:04:00", "2015-09-16 15:20:00"),
    ("2015-09-16 16:00:00", "2015-09-16 18:20:00"),
)


def test_reproduces_nabs_published_score_of_a_reference_file() -> None:
    """Numenta HTM's published per-row scores of realTraffic/speed_7578.csv (NAB v1.1,
    results/numenta, MIT licence) scored at NAB's published thresholds give NAB's published
    per-file raw scores (results/numenta/numenta_<profile>_scores.csv)."""
    with REFERENCE.open() as fh:
        rows = list(csv.DictReader(fh))
    stamps = [r["timestamp"] for r in rows]
    windows = tuple((stamps.index(a), stamps.index(b)) for a, b in SPEED_7578_WINDOWS)
    f = Labelled("realTraffic/speed_7578.csv", np.asarray([float(r["anomaly_score"]) for r in rows]), windows)
    published = {  # profile: (threshold, raw score)
        "standard": (0.542187690735, 3.19572468045),
        "reward_low_FP_rate": (0.575195503235, 3.06755940455),
        "reward_low_FN_rate": (0.542187690735, 3.19572468045),
    }
    for profile, (threshold, raw) in published.items():
        assert math.isclose(score_file(f, threshold, PROFILES[profile]).score, raw, abs_tol=1e-9), profile
    r = score_file(f, 0.542187690735, STD)
    assert (r.tp, r.fn, r.fp) == (4, 0, 3)
