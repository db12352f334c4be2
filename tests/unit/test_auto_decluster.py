"""`auto`'s `decluster`: a point that continues a run beyond the line enters the reference at
most at the line, so an incident raises the line by its first point, not by its length, and the
next incident is judged against the line from before the first (the wake of an incident)."""

from __future__ import annotations

from detectkd.detectors.autoparams import Params
from tests.support.rests import CALM, LINE, held, starts

WAKE = [CALM] + [2 * LINE] * 60 + [CALM] * 300 + [1.3 * LINE] * 5 + [CALM] * 3


def test_an_incident_in_the_wake_of_another_pages_only_declustered() -> None:
    assert starts(held(WAKE)) == [2]  # the first raised the line to its own 2 lines
    assert starts(held(WAKE, decluster=1)) == [2, 362]
    assert starts(held(WAKE, decluster=5)) == [2, 362]  # five of its points: not the line
    # ten of them are the line's whole support (the 0.995 quantile of 2,000): the line is theirs
    assert starts(held(WAKE, decluster=10)) == [2]


def test_the_first_point_of_a_run_enters_whole() -> None:
    """A lone spike is not a run: the reference keeps it, and a series of such spikes learns
    them (a bursty series' line stays where its bursts put it)."""
    spikes = ([CALM] * 40 + [3.5 * LINE]) * 12 + [CALM] * 40 + [3.2 * LINE] + [CALM] * 3
    declustered = held(spikes, decluster=1)
    assert starts(declustered) == starts(held(spikes)) == [40, 163, 286]  # then learnt


def test_a_rebuild_leaves_the_loops_declustered_reference() -> None:
    """An episode further back than the rebuild's per-point tail (512 points): with `decluster`
    the rebuild loops over every point, so the reference holds the episode as the loop did
    (its first point whole, the rest at most at the line), not its raw |z|."""
    import numpy as np

    from detectkd.detectors.auto import AutoDetector
    from detectkd.detectors.autostate import Memo

    rng = np.random.default_rng(5)
    az = np.abs(rng.normal(0, 1, 2600))
    az[900:960] = 8.0  # an episode 1,640 points before the end
    az[2500:2503] = 9.0  # and a short run near it
    breaks = np.zeros(az.size, np.int8)
    det = AutoDetector(Params(decluster=1), 300)
    looped, rebuilt = Memo(2000), Memo(2000)
    det._surprises(looped, az, breaks)
    det._rebuild(rebuilt, az, breaks)

    def ring(m: Memo) -> np.ndarray:  # oldest first
        return np.array(list(m.recent[m.head :]) + list(m.recent[: m.head]))

    assert np.array_equal(ring(rebuilt), ring(looped), equal_nan=True)
    assert (rebuilt.surprise, rebuilt.run, rebuilt.rest, rebuilt.level) == (
        looped.surprise,
        looped.run,
        looped.rest,
        looped.level,
    )
    assert np.sum(ring(looped) >= 8.0) == 2  # each run entered by its first point


def test_decluster_and_sustain_are_refused_together() -> None:
    """The sustained channel's medians read the |z| of a batch as judged, the ring keeps them
    capped: a replay and a live check would differ (review), so the two are not combined."""
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="decluster and sustain"):
        Params.model_validate({"decluster": 1, "sustain": 24})
    assert Params.model_validate({"decluster": 1}).decluster
