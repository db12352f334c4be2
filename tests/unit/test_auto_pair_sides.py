"""`auto`'s `pair_sides`: with it, a pair (persistence: two in a row beyond the line) needs both
points on the same side of their baselines; a zig-zag (one above, one below) is not a pair. Off
(the default), either side."""

from __future__ import annotations

from tests.support.rests import CALM, LINE, held, starts

ZIGZAG = [CALM, 1.5 * LINE, 1.5 * LINE, CALM, CALM]


def test_a_zig_zag_is_a_pair_only_without_the_option() -> None:
    down = [0, 0, 1, 0, 0]  # up, then down
    assert starts(held(ZIGZAG, down, rest_pairs=0)) == [2]
    assert starts(held(ZIGZAG, down, rest_pairs=0, pair_sides=True)) == []


def test_a_pair_on_one_side_pages_either_way() -> None:
    for down in ([0] * 5, [0, 1, 1, 0, 0]):
        assert starts(held(ZIGZAG, down, rest_pairs=0, pair_sides=True)) == [2]
        assert starts(held(ZIGZAG, down, rest_pairs=0)) == [2]


def test_a_spike_needs_no_side() -> None:
    tail = [CALM, 3.5 * LINE, CALM, CALM]
    assert starts(held(tail, [0, 1, 0, 0], rest_pairs=0, pair_sides=True)) == [1]
