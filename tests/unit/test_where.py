"""detectkd.alerting.where: the segments that moved a total (pure logic)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from detectkd.alerting.where import MAX_DIMENSIONS, baseline, cuboids, explain

DIMS = ["region", "device", "channel"]


def cube(seed: int = 1, noise: float = 0.02) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys: list[tuple[str, ...]] = list(
        itertools.product(["eu", "us", "asia", "latam"], ["ios", "android", "web"], ["ads", "seo", "mail"])
    )
    expected = rng.uniform(50, 150, len(keys)) * 10
    actual = expected * rng.normal(1, noise, len(keys))
    return keys, expected, actual


def mask(keys: list[tuple[str, ...]], **where: str) -> np.ndarray:
    return np.array([all(k[DIMS.index(d)] == v for d, v in where.items()) for k in keys])


def test_a_dropped_region_is_named_first_with_its_value_expected_and_share() -> None:
    keys, f, v = cube()
    v[mask(keys, region="eu")] *= 0.5
    e = explain(DIMS, keys, v, f)
    assert [x.segment for x in e.found] == [(("region", "eu"),)]
    top = e.found[0]
    assert top.value == pytest.approx(v[mask(keys, region="eu")].sum())
    assert top.expected == pytest.approx(f[mask(keys, region="eu")].sum())
    assert 0.9 < top.share <= 1.1 and top.surprise > 0


def test_a_combination_of_two_dimensions_beats_its_parent_and_its_children() -> None:
    keys, f, v = cube(2)
    v[mask(keys, region="eu", device="ios")] *= 0.3
    e = explain(DIMS, keys, v, f)
    assert e.found[0].label == "region=eu, device=ios"
    assert len(e.found) == 1


def test_two_separate_causes_are_both_named_biggest_first() -> None:
    keys, f, v = cube(3)
    v[mask(keys, region="us")] *= 0.4
    v[mask(keys, region="eu", channel="mail")] *= 0.7
    e = explain(DIMS, keys, v, f)
    assert {x.label for x in e.found} == {"region=us", "region=eu, channel=mail"}
    assert abs(e.found[0].value - e.found[0].expected) >= abs(e.found[1].value - e.found[1].expected)


def test_a_single_leaf_segment_is_found() -> None:
    keys, f, v = cube(4)
    v[mask(keys, region="asia", device="android", channel="seo")] *= 3
    assert [x.label for x in explain(DIMS, keys, v, f).found] == ["region=asia, device=android, channel=seo"]


def test_everything_moving_alike_is_reported_as_spread_not_as_a_segment() -> None:
    keys, f, v = cube(5, noise=0.005)
    e = explain(DIMS, keys, v * 0.6, f)
    assert e.spread and e.found == ()


def test_noise_alone_names_nothing() -> None:
    keys, f, v = cube(6, noise=0.01)
    assert explain(DIMS, keys, v, f, spread=f * 0.01).found == ()


def test_a_new_segment_without_history_counts_as_all_change() -> None:
    keys, f, v = cube(7, noise=0.0)
    keys.append(("mars", "ios", "ads"))
    f = np.append(f, 0.0)
    v = np.append(v, 50_000.0)
    assert explain(DIMS, keys, v, f).found[0].label == "region=mars"


def test_baseline_is_median_and_a_floored_mad_and_common_is_the_totals_spread() -> None:
    history = np.array([[10.0, 100.0], [12.0, 100.0], [11.0, np.nan], [11.0, 100.0]])
    b = baseline(history)
    assert list(b.expected) == [11.0, 100.0]
    assert b.spread[1] >= 10.0  # a flat history: at least a Poisson sigma
    assert b.common > 0


def test_dimension_limits_and_bounded_cuboids() -> None:
    with pytest.raises(ValueError, match="1 to 6"):
        explain([], [], [], [])
    with pytest.raises(ValueError, match="1 to 6"):
        explain([f"d{i}" for i in range(MAX_DIMENSIONS + 1)], [], [], [])
    assert len(cuboids(4)) == 15 and len(cuboids(6)) == 41
    assert explain(["a"], [], [], []).found == ()


def test_five_thousand_leaves_in_well_under_a_second() -> None:
    rng = np.random.default_rng(8)
    names = [[f"{d}{i}" for i in range(n)] for d, n in zip("abcd", (10, 10, 10, 5), strict=True)]
    keys = list(itertools.product(*names))
    f = rng.lognormal(3, 1, len(keys))
    v = f + rng.normal(0, np.sqrt(f))
    v[[k[0] == "a3" and k[1] == "b2" for k in keys]] *= 0.5
    t = time.perf_counter()
    e = explain(list("abcd"), keys, v, f, np.sqrt(f))
    assert time.perf_counter() - t < 1.0
    assert e.found[0].label == "a=a3, b=b2"
