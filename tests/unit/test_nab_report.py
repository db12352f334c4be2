"""The figures benchmarks/nab_eval.py prints, on hand-built files."""

from __future__ import annotations

import math

import numpy as np

from benchmarks.nab_report import figures
from detectkd.evaluation import Labelled


def file(name: str, n: int, hits: dict[int, float], windows: tuple[tuple[int, int], ...]) -> Labelled:
    scores = np.zeros(n)
    for i, v in hits.items():
        scores[i] = v
    return Labelled(name, scores, windows)


def test_counts_windows_false_positives_quiet_files_and_rates() -> None:
    files = [
        file("realTweets/a.csv", 1000, {450: 0.9, 800: 0.9, 100: 0.9}, ((400, 499),)),  # 100: probation
        file("realTraffic/b.csv", 1000, {420: 0.9}, ((400, 499),)),
        file("artificialNoAnomaly/c.csv", 1000, {900: 0.6}, ()),
    ]
    fig = figures(files, line=0.5)
    assert (fig.caught, fig.windows, fig.fp_rows, fig.quiet) == (2, 2, 2, 1)
    free_with_window, free_quiet = 1000 - 150 - 100, 1000 - 150
    assert math.isclose(fig.per_1000["realTweets"], 1000 / free_with_window)
    assert fig.per_1000["realTraffic"] == 0.0
    assert math.isclose(fig.per_1000["artificialNoAnomaly"], 1000 / free_quiet)
    assert math.isclose(fig.per_1000["all"], 2000 / (2 * free_with_window + free_quiet))
    assert math.isnan(fig.calibration)  # a fixed line: notifications, not scores
    assert math.isnan(fig.held["artificialNoAnomaly"].score) and fig.held["realTraffic"].score > 90

    chosen = figures(files)  # thresholds chosen by NAB's optimiser; calibration on the scores
    assert math.isclose(chosen.calibration, 100 * 2 / (2 * free_with_window + free_quiet))
    assert set(chosen.held) == {"realTweets", "realTraffic", "artificialNoAnomaly"}
