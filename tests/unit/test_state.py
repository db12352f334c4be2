"""The per-series alert state machine."""

from __future__ import annotations

from detectkd.alerting.state import SeriesState, Status, Verdict, decide, step
from detectkd.config.models import Conditions
from detectkd.detectors.base import Direction, Result

STEP = 600


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
        state, note, _ = step(state, i * STEP, decide([res(anomalous)], cond), cond, may)
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
    cond = Conditions(cooldown_minutes=60)  # 6 periods of 10 minutes
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
    state, note, _ = step(SeriesState(), 0, Verdict(True, res(True)), cond, True)
    assert note == "firing"
    again, note2, _ = step(state, 0, Verdict(True, res(True)), cond, True)
    assert note2 is None and again == state


def test_missing_values_do_not_change_the_state() -> None:
    cond = Conditions(consecutive_anomalies=2)
    state, _, _ = step(SeriesState(), 0, Verdict(True, res(True)), cond, True)
    skipped = Verdict(False, None, judged=False)
    state, note, _ = step(state, STEP, skipped, cond, True)
    assert state.status is Status.PENDING and state.streak == 1 and note is None
    state, note, _ = step(state, 2 * STEP, Verdict(True, res(True)), cond, True)
    assert note == "firing"


def test_resolved_carries_the_episode_start() -> None:
    cond = Conditions()
    s, _, since_f = step(SeriesState(), 0, Verdict(True, res(True)), cond, True)
    s, _, _ = step(s, STEP, Verdict(True, res(True)), cond, True)
    s, note, since_r = step(s, 2 * STEP, Verdict(False, res(False)), cond, True)
    assert note == "resolved" and since_f == since_r == 0


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
        state, note, _ = step(state, i * STEP, Verdict(True, res(True)), cond, True, required=3)
        notes.append(note)
    assert notes == [None, None, "firing"]


def run_with(verdicts: list[bool], cond: Conditions, clear: int | None = None) -> list[tuple[int, str, int]]:
    state = SeriesState()
    out: list[tuple[int, str, int]] = []
    for i, anomalous in enumerate(verdicts):
        state, note, _ = step(state, i * STEP, decide([res(anomalous)], cond), cond, True, clear=clear)
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
    assert run_with([True, False, False, False], cond, clear=3) == [(0, "firing", 0), (3, "resolved", 0)]


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
