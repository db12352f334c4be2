"""`auto`'s `decluster`: a point that continues a run beyond the line enters the reference at
most at the line, so an incident raises the line by its first point, not by its length, and the
next incident is judged against the line from before the first (the wake of an incident)."""

from __future__ import annotations

from tests.support.rests import CALM, LINE, held, starts

WAKE = [CALM] + [2 * LINE] * 60 + [CALM] * 300 + [1.3 * LINE] * 5 + [CALM] * 3


def test_an_incident_in_the_wake_of_another_pages_only_declustered() -> None:
    assert starts(held(WAKE, rest_pairs=0)) == [2]  # the first raised the line to its own 2 lines
    assert starts(held(WAKE, rest_pairs=0, decluster=True)) == [2, 362]


def test_the_first_point_of_a_run_enters_whole() -> None:
    """A lone spike is not a run: the reference keeps it, and a series of such spikes learns
    them (a bursty series' line stays where its bursts put it)."""
    spikes = ([CALM] * 40 + [3.5 * LINE]) * 12 + [CALM] * 40 + [3.2 * LINE] + [CALM] * 3
    declustered = held(spikes, rest_pairs=0, decluster=True)
    assert starts(declustered) == starts(held(spikes, rest_pairs=0)) == [40, 163, 286]  # then learnt
