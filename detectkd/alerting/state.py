"""Per-(metric, series) alert state machine: a pure function of state and a verdict.

    OK --anomaly--> PENDING --N consecutive--> FIRING --M normal points--> OK
                                                    (RESOLVED notified)

FIRING is re-sent every `repeat_interval` (growing by `repeat_backoff`)
while it lasts; `clear_consecutive` / `keep_firing_for` is the hysteresis.

`may_notify` is False for all but the newest period of a catch-up batch: the
state still advances, and whatever is owed (a FIRING not yet sent, a RESOLVED
for a sent FIRING) is sent at the newest period. A FIRING inside
`cooldown_minutes` of the previous FIRING of this series is not sent, and
neither is its RESOLVED.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from detectkd.alerting.alert import AlertStatus
from detectkd.config.models import Conditions
from detectkd.detectors.base import Result


class Status(StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True)
class SeriesState:
    status: Status = Status.OK
    streak: int = 0
    since: int | None = None  # first anomalous period of the current episode
    notified_since: int | None = None  # episode whose FIRING was sent and is not yet resolved
    last_fired_at: int | None = None  # period of the last FIRING sent (cooldown)
    last_period: int | None = None  # newest period judged
    clear_streak: int = 0  # normal periods in a row while FIRING (hysteresis)
    last_sent_at: int | None = None  # period of the last FIRING or repeat sent
    repeats: int = 0  # repeats sent in the current episode


@dataclass(frozen=True)
class Verdict:
    anomalous: bool
    primary: Result | None  # the result the alert describes
    judged: bool = True  # False: no detector could judge (missing value, cold start)


def decide(results: list[Result], cond: Conditions) -> Verdict:
    """Combine detector results under the direction and minimum-deviation filters.

    `combine`: `any` (one flag is enough), `all`, `majority` of the detectors
    that could judge; `min_detectors: N` overrides with "at least N".
    """
    judged = [r for r in results if r.skipped is None]
    if not judged:
        return Verdict(False, results[0] if results else None, judged=False)
    hits = [r for r in judged if r.anomaly and _passes(r, cond)]
    if len(hits) >= _needed(len(judged), cond):
        return Verdict(True, max(hits, key=lambda r: r.score))
    return Verdict(False, max(judged, key=lambda r: r.score))


def _needed(judged: int, cond: Conditions) -> int:
    if cond.min_detectors is not None:
        return min(cond.min_detectors, judged)
    if cond.combine == "all":
        return judged
    if cond.combine == "majority":
        return judged // 2 + 1
    return 1


def _passes(r: Result, cond: Conditions) -> bool:
    if cond.direction != "both" and r.direction is not None and r.direction != cond.direction:
        return False
    if cond.min_deviation_percent > 0:
        dev = r.deviation_percent
        if dev is not None and abs(dev) < cond.min_deviation_percent:
            return False
    return not (
        cond.min_deviation_abs > 0
        and r.value is not None
        and r.expected is not None
        and abs(r.value - r.expected) < cond.min_deviation_abs
    )


def step(
    state: SeriesState,
    period: int,
    verdict: Verdict,
    cond: Conditions,
    may_notify: bool,
    required: int | None = None,
    clear: int | None = None,
) -> tuple[SeriesState, AlertStatus | None, int | None]:
    """Advance one period. Returns (new state, notification or None, episode start).

    `required`: anomalous periods in a row before FIRING; `clear`: normal
    periods in a row before a FIRING series resolves (defaults: the
    condition's counts; the runner converts `for` / `keep_firing_for`).
    """
    if state.last_period is not None and period <= state.last_period:
        return state, None, None  # already judged: re-runs never notify twice
    state = replace(state, last_period=period)
    if not verdict.judged:
        return _owed(state, period, may_notify, cond)
    if verdict.anomalous:
        streak = state.streak + 1
        since = state.since if state.since is not None else period
        need = required if required is not None else cond.consecutive_anomalies
        status = Status.FIRING if streak >= need or state.status is Status.FIRING else Status.PENDING
        state = replace(state, streak=streak, since=since, status=status, clear_streak=0)
    elif state.status is Status.FIRING and state.clear_streak + 1 < (clear or cond.clear_consecutive):
        state = replace(state, streak=0, clear_streak=state.clear_streak + 1)  # still FIRING
    else:
        state = replace(state, streak=0, since=None, status=Status.OK, clear_streak=0)
    return _owed(state, period, may_notify, cond)


def _owed(
    state: SeriesState, period: int, may_notify: bool, cond: Conditions
) -> tuple[SeriesState, AlertStatus | None, int | None]:
    if not may_notify:
        return state, None, None
    if state.status is Status.FIRING and state.notified_since is None:
        if _in_cooldown(state, period, cond):
            return state, None, None
        state = replace(
            state, notified_since=state.since, last_fired_at=period, last_sent_at=period, repeats=0
        )
        return state, "firing", state.since
    if state.status is Status.FIRING and state.last_sent_at is not None:
        wait = cond.repeat_after(state.repeats)
        if wait is not None and period - state.last_sent_at >= wait:
            state = replace(state, last_sent_at=period, repeats=state.repeats + 1)
            return state, "firing", state.notified_since
    if state.status is Status.OK and state.notified_since is not None:
        since = state.notified_since
        return replace(state, notified_since=None, repeats=0), "resolved", since
    return state, None, None


def _in_cooldown(state: SeriesState, period: int, cond: Conditions) -> bool:
    if not cond.cooldown_minutes or state.last_fired_at is None:
        return False
    return period - state.last_fired_at < cond.cooldown_minutes * 60
