"""The shape probe of benchmarks/nab_shape.py: a causal left nearest-neighbour distance."""

from __future__ import annotations

import numpy as np

from benchmarks.nab_shape import auc, left_distance


def test_a_shape_seen_before_is_near_and_a_new_one_is_far() -> None:
    rng = np.random.default_rng(3)
    x = 10.0 + rng.normal(0.0, 1.0, 1200)
    bump = np.array([0.0, 4.0, 9.0, 4.0])
    x[500:504] += bump  # the shape once ...
    x[1100:1104] += bump  # ... and again: seen before
    assert left_distance(x, 1103, 4, 2000) < 2.0  # two draws of the noise: about 1.4 spreads apart
    y = x.copy()
    y[1100:1104] = 10.0 + bump[::-1] * -1.5  # a dip the series never made
    assert left_distance(y, 1103, 4, 2000) > 5.0


def test_it_reads_only_the_past_and_its_reach() -> None:
    x = np.zeros(300)
    x[100] = 7.0  # a value the point at 299 matches, 199 values back
    x[299] = 7.0
    x[:99] += np.arange(99) * 1e-3  # a spread that is not zero
    assert left_distance(x, 299, 1, 250) == 0.0
    assert left_distance(x, 299, 1, 150) > 100  # the match is beyond the reach
    # No future read: the point at 298 is new, the one after it repeats an earlier value, so a
    # distance that read one value too far would be 0.
    novel = x.copy()
    novel[298] = 50.0
    assert left_distance(novel, 298, 1, 250) > 100
    assert left_distance(novel, 298, 1, 250) == left_distance(novel[:299], 298, 1, 250)
    assert np.isnan(left_distance(x, 4, 3, 2000))  # too few values for a non-overlapping match


def test_the_area_under_the_curve_counts_ties_half() -> None:
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert auc(np.array([1.0, np.nan]), np.array([2.0, 0.0])) == 0.5
