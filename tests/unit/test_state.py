"""The per-series alert state machine."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from detectkd.alerting.state import Notice, Rules, SeriesState, Status, Verdict, decide, step
from detectkd.config.models import Conditions
from detectkd.detectors.base import Direction, Result

STEP = 600


def one(notes: list[Notice]) -> str | None:
    """The single anomaly notification's status (None: nothing owed)."""
    assert all(n.kind == "anomaly" for n in notes) and len(notes) <= 1, notes
    return notes[0].status if notes else None


def res(anomaly: bool, direction: Direction = "up", value: float = 200.0, expected: float = 100.0) -> Result:
    return Result(
        "mad", value, anomaly, 0.9 if anomaly else 0.1, expected, 90, 110, direction if anomaly else None
    )


def run(
    verdicts: list[bool], cond: Conditions, notify_last_only: bool = False
) -> tuple[SeriesState, list[tuple[int, str]]]:
    state = SeriesState()
    out: list[tuple[int, str]] = []
    for i, anomalous in enumerate(verdicts):
        may = not notify_last_only or i == len(verdicts) - 1
        state, notes = step(state, i * STEP, decide([res(anomalous)], cond), Rules.plain(cond, STEP), may)
        note = one(notes)
        if note:
            out.append((i, note))
    return state, out


def test_fires_after_consecutive_anomalies_and_resolves_once() -> None:
    cond = Conditions(consecutive_anomalies=3)
    state, notes = run([True, True, False, True, True, True, True, False, False], cond)
    assert notes == [(5, "firing"), (7, "resolved")]
    assert state.status is Status.OK


def test_pending_until_enough_consecutive() -> None:
    cond = Conditions(consecutive_anomalies=2)
    state, notes = run([True], cond)
    assert state.status is Status.PENDING and notes == []


def test_cooldown_suppresses_a_new_firing_and_its_resolved() -> None:
    cond = Conditions(cooldown_minutes=60, flap_changes=0)  # 6 periods of 10 minutes
    _, notes = run([True, False, True, False, False, False, False, False, True, False], cond)
    assert notes == [(0, "firing"), (1, "resolved"), (8, "firing"), (9, "resolved")]


def test_direction_filter() -> None:
    cond = Conditions(direction="down")
    assert not decide([res(True, "up")], cond).anomalous
    assert decide([res(True, "down", value=10)], cond).anomalous


def test_min_deviation_percent() -> None:
    cond = Conditions(min_deviation_percent=50)
    assert not decide([res(True, value=120, expected=100)], cond).anomalous
    assert decide([res(True, value=160, expected=100)], cond).anomalous


def test_any_detector_fires_and_the_strongest_is_primary() -> None:
    weak = Result("zscore", 200, True, 0.6, 100, 90, 110, "up")
    strong = Result("mad", 200, True, 0.95, 100, 90, 110, "up")
    quiet = Result("threshold", 200, False, 0.2)
    v = decide([quiet, weak, strong], Conditions())
    assert v.anomalous and v.primary is strong


def test_catch_up_notifies_only_at_the_newest_period() -> None:
    cond = Conditions()
    # An episode entirely inside a catch-up batch sends nothing.
    _, notes = run([True, True, False, False], cond, notify_last_only=True)
    assert notes == []
    # An episode still open at the newest period sends its FIRING there.
    _, notes = run([False, True, True, True], cond, notify_last_only=True)
    assert notes == [(3, "firing")]


def test_already_judged_period_never_notifies_twice() -> None:
    cond = Conditions()
    rules = Rules.plain(cond, STEP)
    state, notes = step(SeriesState(), 0, Verdict(True, res(True)), rules, True)
    assert one(notes) == "firing"
    again, notes2 = step(state, 0, Verdict(True, res(True)), rules, True)
    assert notes2 == [] and again == state


def test_unjudged_periods_do_not_change_the_state() -> None:
    rules = Rules.plain(Conditions(consecutive_anomalies=2), STEP)
    state, _ = step(SeriesState(), 0, Verdict(True, res(True)), rules, True)
    skipped = Verdict(False, None, judged=False)  # e.g. a detector in cold start
    state, notes = step(state, STEP, skipped, rules, True)
    assert state.status is Status.PENDING and state.streak == 1 and notes == []
    state, notes = step(state, 2 * STEP, Verdict(True, res(True)), rules, True)
    assert one(notes) == "firing"


def test_resolved_carries_the_episode_start() -> None:
    rules = Rules.plain(Conditions(), STEP)
    s, fired = step(SeriesState(), 0, Verdict(True, res(True)), rules, True)
    s, _ = step(s, STEP, Verdict(True, res(True)), rules, True)
    s, resolved = step(s, 2 * STEP, Verdict(False, res(False)), rules, True)
    assert [n.status for n in fired + resolved] == ["firing", "resolved"]
    assert fired[0].episode == resolved[0].episode == 0


def det(name: str, anomaly: bool, score: float = 0.9) -> Result:
    return Result(name, 200.0, anomaly, score if anomaly else 0.1, 100.0, 90, 110, "up" if anomaly else None)


def test_combination_any_all_majority_and_min_detectors() -> None:
    two_of_three = [det("mad", True), det("zscore", True, 0.7), det("threshold", False)]
    one_of_three = [det("mad", True), det("zscore", False), det("threshold", False)]
    assert decide(one_of_three, Conditions()).anomalous  # any
    assert not decide(two_of_three, Conditions(combine="all")).anomalous
    assert decide(two_of_three, Conditions(combine="majority")).anomalous
    assert not decide(one_of_three, Conditions(combine="majority")).anomalous
    assert decide(two_of_three, Conditions(min_detectors=2)).anomalous
    assert not decide(one_of_three, Conditions(min_detectors=2)).anomalous
    v = decide(two_of_three, Conditions(combine="majority"))
    assert v.primary is not None and v.primary.detector == "mad"  # the strongest of those that fired


def test_detectors_in_cold_start_do_not_count_against_all() -> None:
    cold = Result("mad", 200.0, False, 0.0, skipped="cold start")
    assert decide([det("threshold", True), cold], Conditions(combine="all")).anomalous


def test_min_deviation_abs() -> None:
    cond = Conditions(min_deviation_abs=150)
    assert not decide([res(True, value=200, expected=100)], cond).anomalous
    assert decide([res(True, value=300, expected=100)], cond).anomalous


def test_for_as_a_duration_rounds_up_to_whole_periods() -> None:
    from datetime import timedelta

    cond = Conditions.model_validate({"for": "25m"})
    assert cond.required_streak(timedelta(minutes=10)) == 3
    assert Conditions(consecutive_anomalies=4).required_streak(timedelta(minutes=10)) == 4
    state = SeriesState()
    notes = []
    for i in range(3):
        state, got = step(
            state, i * STEP, Verdict(True, res(True)), Rules.of(cond, timedelta(seconds=STEP)), True
        )
        notes.append(one(got))
    assert notes == [None, None, "firing"]


def run_with(verdicts: list[bool], cond: Conditions) -> list[tuple[int, str, int]]:
    state = SeriesState()
    out: list[tuple[int, str, int]] = []
    rules = Rules.plain(cond, STEP)
    for i, anomalous in enumerate(verdicts):
        state, notes = step(state, i * STEP, decide([res(anomalous)], cond), rules, True)
        note = one(notes)
        if note:
            out.append((i, note, state.repeats))
    return out


def test_hysteresis_keeps_firing_until_enough_normal_points() -> None:
    cond = Conditions(clear_consecutive=3)
    notes = run_with([True, False, False, True, False, False, False], cond)
    assert notes == [(0, "firing", 0), (6, "resolved", 0)]  # a blip back to normal did not resolve it


def test_keep_firing_for_converts_to_periods() -> None:
    from datetime import timedelta

    cond = Conditions.model_validate({"keep_firing_for": "25m"})
    assert cond.required_clear(timedelta(minutes=10)) == 3
    assert run_with([True, False, False, False], cond) == [(0, "firing", 0), (3, "resolved", 0)]


def test_repeat_interval_with_backoff_while_firing() -> None:
    # Periods of 10 minutes; repeat after 20m, then 40m, then capped at 60m.
    cond = Conditions.model_validate(
        {"repeat_interval": "20m", "repeat_backoff": 2, "max_repeat_interval": "1h"}
    )
    notes = run_with([True] * 16 + [False], cond)
    assert notes == [
        (0, "firing", 0),
        (2, "firing", 1),  # +20m
        (6, "firing", 2),  # +40m
        (12, "firing", 3),  # +60m (80m capped at 1h)
        (16, "resolved", 0),
    ]


def test_repeats_get_their_own_idempotency_keys() -> None:
    from detectkd.alerting.alert import Alert

    first = Alert("m", "", {}, "firing", 0, 0, 1.0, 1.0, 0.0, 2.0, 0.9, "up", "mad", 600)
    again = Alert("m", "", {}, "firing", 1200, 0, 1.0, 1.0, 0.0, 2.0, 0.9, "up", "mad", 600, repeat=1)
    assert first.key == "m||firing|0" and again.key == "m||firing|0|r1"
    assert Alert.from_json(again.to_json()) == again


# -- no data -------------------------------------------------------------------------------

MISSING = Verdict(False, None, judged=False, missing=True)


def play(
    script: str, cond: Conditions, state: SeriesState | None = None
) -> tuple[SeriesState, list[tuple[int, str, str, int]]]:
    """`script`: one character per period: A anomalous, n normal, _ no value, c cold start."""
    rules = Rules.plain(cond, STEP)
    state = state or SeriesState()
    out: list[tuple[int, str, str, int]] = []
    verdicts = {"A": Verdict(True, res(True)), "n": Verdict(False, res(False)), "_": MISSING}
    verdicts["c"] = Verdict(False, None, judged=False)
    for i, ch in enumerate(script):
        state, notes = step(state, i * STEP, verdicts[ch], rules, True)
        out.extend((i, n.kind, n.status, n.episode // STEP) for n in notes)
    return state, out


def test_nodata_after_n_empty_periods_ends_the_episode_and_resolves_when_data_returns() -> None:
    state, notes = play("AA___n", Conditions(no_data_periods=3))
    assert notes == [
        (0, "anomaly", "firing", 0),
        (4, "anomaly", "resolved", 0),  # no data is not evidence of an anomaly
        (4, "nodata", "firing", 2),  # the NODATA episode started at the first empty period
        (5, "nodata", "resolved", 2),
    ]
    assert state.status is Status.OK and state.empty_streak == 0


def test_short_gaps_hold_the_state_under_the_nodata_policy() -> None:
    _, notes = play("A__A__n", Conditions(no_data_periods=3))
    assert notes == [(0, "anomaly", "firing", 0), (6, "anomaly", "resolved", 0)]


def test_on_no_data_alerting_ok_and_keep_last() -> None:
    _, alerting = play("n__n", Conditions(on_no_data="alerting", consecutive_anomalies=2))
    assert alerting == [(2, "anomaly", "firing", 1), (3, "anomaly", "resolved", 1)]
    _, ok = play("A__", Conditions(on_no_data="ok"))
    assert ok == [(0, "anomaly", "firing", 0), (1, "anomaly", "resolved", 0)]
    state, keep = play("A" + "_" * 10, Conditions(on_no_data="keep_last"))
    assert keep == [(0, "anomaly", "firing", 0)] and state.status is Status.FIRING
    assert state.empty_streak == 10


def test_cold_start_is_not_no_data() -> None:
    state, notes = play("cccccc", Conditions(no_data_periods=2))
    assert notes == [] and state.status is Status.OK and state.empty_streak == 0


def test_nodata_owed_during_catch_up_is_sent_at_the_newest_period() -> None:
    rules = Rules.plain(Conditions(no_data_periods=2), STEP)
    state = SeriesState()
    for i in range(4):
        state, notes = step(state, i * STEP, MISSING, rules, may_notify=False)
        assert notes == []
    state, notes = step(state, 4 * STEP, MISSING, rules, may_notify=True)
    assert [(n.kind, n.status, n.episode) for n in notes] == [("nodata", "firing", 0)]


# -- flap damping --------------------------------------------------------------------------


def test_flapping_sends_one_notice_then_holds_until_settled() -> None:
    cond = Conditions(flap_changes=4, flap_window=timedelta(seconds=10 * STEP))
    script = "AnAnAnAn" + "n" * 12 + "A"
    state, notes = play(script, cond)
    assert notes == [
        (0, "anomaly", "firing", 0),
        (1, "anomaly", "resolved", 0),
        (2, "anomaly", "firing", 2),
        (3, "flapping", "firing", 3),  # 4th change: flapping, the RESOLVED is held
        # periods 4..7 flip four more times: nothing is sent
        (16, "flapping", "resolved", 3),  # fewer than 2 changes left in the window
        (16, "anomaly", "resolved", 2),  # what was held goes out
        (20, "anomaly", "firing", 20),
    ]
    assert state.flapping_since is None


def test_settling_while_firing_continues_the_episode_receivers_know() -> None:
    cond = Conditions(flap_changes=4, flap_window=timedelta(seconds=6 * STEP))
    state, notes = play("AnAn" + "A" * 8 + "n", cond)
    # Flapping from period 3 (the RESOLVED of episode 2 is held); FIRING again from
    # period 4 on, so it settles at 9. Receivers still hold episode 2 as firing: no new
    # FIRING, and the RESOLVED at the end is for episode 2.
    assert notes[3:] == [
        (3, "flapping", "firing", 3),
        (9, "flapping", "resolved", 3),
        (12, "anomaly", "resolved", 2),
    ]
    assert state.status is Status.OK and state.notified_since is None


def test_flap_damping_off() -> None:
    _, notes = play("AnAnAnAn", Conditions(flap_changes=0))
    assert [n[1] for n in notes] == ["anomaly"] * 8


def test_state_round_trips_through_a_row() -> None:
    from detectkd.alerting.state import state_from_row, state_row

    cond = Conditions(flap_changes=4, no_data_periods=2)
    state, _ = play("AnAn__", cond)
    assert state.flips and state.nodata_notified is not None
    assert state_from_row(state_row(state)) == state
    assert state_from_row(state_row(SeriesState())) == SeriesState()
    assert SeriesState().extra_json() == "{}"


def test_quiet_fast_path_matches_the_general_path() -> None:
    """`step` takes a shortcut for normal points of a quiet series; it must change nothing."""
    import random

    import pytest

    from detectkd.alerting import state as state_mod

    rng = random.Random(11)
    conditions = [
        Conditions(),
        Conditions(consecutive_anomalies=2, clear_consecutive=2, flap_changes=4),
        Conditions(cooldown_minutes=30, no_data_periods=2, flap_changes=0),
        Conditions(on_no_data="alerting", repeat_interval=timedelta(minutes=20)),
    ]
    for cond in conditions:
        rules = Rules.of(cond, timedelta(seconds=STEP))
        fast, slow = SeriesState(), SeriesState()
        for i in range(3000):
            roll = rng.random()
            verdict = (
                Verdict(False, None, judged=False, missing=True)
                if roll < 0.05
                else Verdict(roll < 0.15, res(roll < 0.15))
            )
            fast, fast_notes = step(fast, i * STEP, verdict, rules, True)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(state_mod, "_quiet", lambda s, v: False)
                slow, slow_notes = step(slow, i * STEP, verdict, rules, True)
            assert fast == slow and fast_notes == slow_notes, (cond, i)


def test_a_new_episode_judged_in_catch_up_is_not_merged_into_the_notified_one() -> None:
    """Issue 13: after a restart, catch-up judged normal, normal, anomalous; the new episode's
    FIRING was never sent (the notified one looked like it was still going on)."""
    cond = Conditions(flap_changes=0)
    rules = Rules.plain(cond, STEP)
    state, notes = step(SeriesState(), 0, decide([res(True)], cond), rules, True)
    assert [(n.status, n.episode) for n in notes] == [("firing", 0)]
    held = []
    for i, anomalous in enumerate([False, False, True], start=1):  # only the newest may notify
        state, notes = step(state, i * STEP, decide([res(anomalous)], cond), rules, i == 3)
        held.append([(n.status, n.episode) for n in notes])
    assert held == [[], [], [("resolved", 0), ("firing", 3 * STEP)]]
    assert state.status is Status.FIRING and state.notified_since == 3 * STEP
    # The next period of the same episode sends nothing more.
    state, notes = step(state, 4 * STEP, decide([res(True)], cond), rules, True)
    assert notes == []


def test_one_detector_is_decided_as_the_general_combine_decides_it() -> None:
    """`decide`'s shortcut for one result gives the verdict the general path gives the same
    result beside a detector that could not judge, under every combine and filter."""
    skipped = Result("other", None, False, 0.0, skipped="missing value")
    results = [
        res(True),
        res(False),
        res(True, "down", 100.5),
        res(True, None),
        Result("mad", None, True, 0.7),
        Result("mad", 1.0, np.True_, 0.8, 0.0),  # type: ignore[arg-type]  # (a numpy verdict)
        Result("mad", 1.0, np.False_, 0.2, 0.0),  # type: ignore[arg-type]
        Result("mad", None, False, 0.0, skipped="cold start"),
    ]
    conditions = [
        Conditions(),
        Conditions(combine="all"),
        Conditions(combine="majority"),
        Conditions(min_detectors=2),
        Conditions(direction="up"),
        Conditions(min_deviation_percent=5),
        Conditions(min_deviation_abs=50),
    ]
    for r in results:
        for cond in conditions:
            one, general = decide([r], cond), decide([r, skipped], cond)
            assert one == general and type(one.anomalous) is bool, (r, cond)
