"""Per-(metric, series) alert state machine: a pure function of state and a verdict.

    OK --anomaly--> PENDING --N consecutive--> FIRING --M normal points--> OK
                                                    (RESOLVED notified)
    any --no value for `no_data_periods`--> NODATA --a value--> OK   (policy `nodata`)

FIRING is re-sent every `repeat_interval` (growing by `repeat_backoff`)
while it lasts; `clear_consecutive` / `keep_firing_for` is the hysteresis.
A period without a value follows `on_no_data`: `nodata` (the default) holds
the state, then enters NODATA; `alerting` counts it as anomalous, `ok` as
normal, `keep_last` holds the state for as long as it lasts.

Flap damping: a series that enters or leaves FIRING `flap_changes` times
within `flap_window` is *flapping*: one FLAPPING notification, then its
FIRING/RESOLVED notifications are held until fewer than half that many
changes remain in the window; then it settles (one notification) and
whatever is owed (a FIRING not yet sent, a RESOLVED for a sent FIRING) goes
out.

`may_notify` is False for all but the newest period of a catch-up batch: the
state still advances, and whatever is owed is sent at the newest period. A
FIRING inside `cooldown_minutes` of the previous FIRING of this series is
not sent, and neither is its RESOLVED.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from detectkd.alerting.alert import AlertKind, AlertStatus
from detectkd.config.models import Conditions
from detectkd.detectors.base import Result


class Status(StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    NODATA = "nodata"


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
    # Stored together as one JSON column (`extra`): see `extra_json`.
    empty_streak: int = 0  # periods in a row without a value
    empty_since: int | None = None  # the first of them
    nodata_notified: int | None = None  # NODATA episode whose notification was sent
    flips: tuple[int, ...] = ()  # periods that entered or left FIRING, inside the flap window
    flapping_since: int | None = None
    flap_notified: int | None = None  # flapping episode whose notification was sent
    fired_by: str | None = None  # detector the episode's FIRING named (its RESOLVED names it too)
    resent_at: int | None = None  # period of the last send to Alertmanager (alerting.resend)
    similar: tuple[int, ...] = ()  # the newest FIRING episodes' starts, + above, - below (runtime.explain)
    where: str | None = None  # the last FIRING's `explain:` answer (JSON of its where extras)

    def extra_json(self) -> str:
        """The fields without a column of their own, as JSON (only non-defaults)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _EXTRA:
                value = getattr(self, f.name)
                if value != f.default:
                    out[f.name] = list(value) if isinstance(value, tuple) else value
        return json.dumps(out, sort_keys=True) if out else "{}"

    def with_extra(self, text: str | None) -> SeriesState:
        data = json.loads(text) if text else {}
        known: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in _EXTRA
        }
        return replace(self, **known)


_EXTRA = frozenset(
    {
        "empty_streak",
        "empty_since",
        "nodata_notified",
        "flips",
        "flapping_since",
        "flap_notified",
        "fired_by",
        "resent_at",
        "similar",
        "where",
    }
)


@dataclass(frozen=True, slots=True)
class Verdict:
    anomalous: bool
    primary: Result | None  # the result the alert describes
    judged: bool = True  # False: no detector could judge (missing value, cold start)
    missing: bool = False  # the period has no value at all


@dataclass(frozen=True)
class Notice:
    """A notification the state machine owes: status, what it is about, and since when."""

    status: AlertStatus
    episode: int
    kind: AlertKind = "anomaly"


@dataclass(frozen=True)
class Rules:
    """Conditions with durations converted to periods for one metric's interval."""

    cond: Conditions
    required: int  # anomalous periods in a row before FIRING
    clear: int  # normal periods in a row before a FIRING series resolves
    flap_window: float  # seconds

    @staticmethod
    def of(cond: Conditions, interval: timedelta) -> Rules:
        step = interval.total_seconds()
        window = cond.flap_window.total_seconds() if cond.flap_window is not None else 20 * step
        return Rules(cond, cond.required_streak(interval), cond.required_clear(interval), window)

    @staticmethod
    def plain(cond: Conditions, step: float = 600) -> Rules:
        return Rules.of(cond, timedelta(seconds=step))


def decide(results: list[Result], cond: Conditions) -> Verdict:
    """Combine detector results under the direction and minimum-deviation filters.

    `combine`: `any` (one flag is enough), `all`, `majority` of the detectors
    that could judge; `min_detectors: N` overrides with "at least N".
    """
    if len(results) == 1:  # one detector (the usual case): what the general path gives
        r = results[0]
        if r.skipped is not None:
            return Verdict(False, r, judged=False)
        return Verdict(bool(r.anomaly) and _passes(r, cond), r)
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
    state: SeriesState, period: int, verdict: Verdict, rules: Rules, may_notify: bool
) -> tuple[SeriesState, list[Notice]]:
    """Advance one period. Returns the new state and the notifications now owed."""
    if state.last_period is not None and period <= state.last_period:
        return state, []  # already judged: re-runs never notify twice
    if _quiet(state, verdict):  # the common case, taken on every normal period: one copy
        # (`copy.copy`'s own steps, without its dispatch: a new instance, the same fields)
        quiet = object.__new__(type(state))
        fields_of = quiet.__dict__
        fields_of.update(state.__dict__)
        fields_of["last_period"] = period
        return quiet, []
    was_firing = state.status is Status.FIRING
    state = replace(state, last_period=period)
    if verdict.missing:
        state, verdict = _no_data(state, period, verdict, rules)
    elif state.empty_streak or state.status is Status.NODATA:
        status = Status.OK if state.status is Status.NODATA else state.status
        state = replace(state, empty_streak=0, empty_since=None, status=status)
    if verdict.judged:
        state = _judge(state, period, verdict.anomalous, rules)
    state = _flaps(state, period, was_firing, rules)
    if not may_notify:
        return state, []
    return _owed(state, period, rules.cond)


def _quiet(state: SeriesState, verdict: Verdict) -> bool:
    """A normal point for a series with nothing going on: only `last_period` changes
    (the general path below gives the same state and no notice)."""
    return (
        verdict.judged
        and not verdict.anomalous
        and not verdict.missing
        and state.status is Status.OK
        and state.streak == 0
        and state.since is None
        and state.notified_since is None
        and state.clear_streak == 0
        and state.empty_streak == 0
        and state.empty_since is None
        and state.nodata_notified is None
        and not state.flips
        and state.flapping_since is None
        and state.flap_notified is None
    )


def _no_data(state: SeriesState, period: int, verdict: Verdict, rules: Rules) -> tuple[SeriesState, Verdict]:
    """Apply `on_no_data`; returns the state and the verdict to judge (if any)."""
    policy = rules.cond.on_no_data
    empty_since = state.empty_since if state.empty_since is not None else period
    state = replace(state, empty_streak=state.empty_streak + 1, empty_since=empty_since)
    if policy == "alerting":
        return state, Verdict(True, verdict.primary)
    if policy == "ok":
        return state, Verdict(False, verdict.primary)
    unjudged = Verdict(False, verdict.primary, judged=False, missing=True)
    if policy == "nodata" and state.empty_streak >= rules.cond.no_data_periods:
        # The anomaly episode ends: no data is not evidence either way.
        state = replace(state, status=Status.NODATA, streak=0, since=None, clear_streak=0)
    return state, unjudged


def _judge(state: SeriesState, period: int, anomalous: bool, rules: Rules) -> SeriesState:
    if anomalous:
        streak = state.streak + 1
        since = state.since if state.since is not None else period
        firing = streak >= rules.required or state.status is Status.FIRING
        status = Status.FIRING if firing else Status.PENDING
        return replace(state, streak=streak, since=since, status=status, clear_streak=0)
    if state.status is Status.FIRING and state.clear_streak + 1 < rules.clear:
        return replace(state, streak=0, clear_streak=state.clear_streak + 1)  # still FIRING
    return replace(state, streak=0, since=None, status=Status.OK, clear_streak=0)


def _flaps(state: SeriesState, period: int, was_firing: bool, rules: Rules) -> SeriesState:
    limit = rules.cond.flap_changes
    if not limit:
        return state
    flips = state.flips
    if (state.status is Status.FIRING) != was_firing:
        flips = (*flips, period)
    flips = tuple(p for p in flips if p > period - rules.flap_window)
    flapping = state.flapping_since
    if flapping is None and len(flips) >= limit:
        flapping = period
    elif flapping is not None and len(flips) < (limit + 1) // 2:
        flapping = None  # settled
    return replace(state, flips=flips, flapping_since=flapping)


def _owed(state: SeriesState, period: int, cond: Conditions) -> tuple[SeriesState, list[Notice]]:
    notes: list[Notice] = []
    flapping, flap_sent = state.flapping_since, state.flap_notified
    if flapping is not None and flap_sent is None:
        state = replace(state, flap_notified=flapping)
        notes.append(Notice("firing", flapping, "flapping"))
    elif flapping is None and flap_sent is not None:
        notes.append(Notice("resolved", flap_sent, "flapping"))
        state = replace(state, flap_notified=None)
        if state.status is Status.FIRING and state.notified_since is not None:
            # Settled while firing: damping means the episode receivers know goes on.
            state = replace(state, since=state.notified_since)
    if flapping is None:  # while flapping, anomaly notifications are held
        state, owed = _owed_anomaly(state, period, cond)
        notes.extend(owed)
    empty, nodata_sent = state.empty_since, state.nodata_notified
    if state.status is Status.NODATA and nodata_sent is None and empty is not None:
        state = replace(state, nodata_notified=empty)
        notes.append(Notice("firing", empty, "nodata"))
    elif state.status is not Status.NODATA and nodata_sent is not None:
        notes.append(Notice("resolved", nodata_sent, "nodata"))
        state = replace(state, nodata_notified=None)
    return state, notes


def _owed_anomaly(state: SeriesState, period: int, cond: Conditions) -> tuple[SeriesState, list[Notice]]:
    since, sent, last_sent = state.since, state.notified_since, state.last_sent_at
    firing = state.status is Status.FIRING
    if firing and sent is not None and since is not None and since != sent:
        # Another episode than the notified one: the notified one ended while notifications
        # were held (catch-up after a restart, a silence). Resolve it, then owe the new one.
        state, owed = _owed_anomaly(replace(state, notified_since=None, repeats=0), period, cond)
        return state, [Notice("resolved", sent), *owed]
    if firing and sent is None:
        if since is None or _in_cooldown(state, period, cond):
            return state, []
        state = replace(state, notified_since=since, last_fired_at=period, last_sent_at=period, repeats=0)
        return state, [Notice("firing", since)]
    if firing and sent is not None and last_sent is not None:
        wait = cond.repeat_after(state.repeats)
        if wait is not None and period - last_sent >= wait:
            state = replace(state, last_sent_at=period, repeats=state.repeats + 1)
            return state, [Notice("firing", sent)]
    if not firing and sent is not None:
        return replace(state, notified_since=None, repeats=0), [Notice("resolved", sent)]
    return state, []


def _in_cooldown(state: SeriesState, period: int, cond: Conditions) -> bool:
    if not cond.cooldown_minutes or state.last_fired_at is None:
        return False
    return period - state.last_fired_at < cond.cooldown_minutes * 60


# -- persistence: one row shape for every store ---------------------------------------------

STATE_COLUMNS = (
    "status, streak, since, notified_since, last_fired_at, last_period, "
    "clear_streak, last_sent_at, repeats, extra"
)


def state_row(s: SeriesState) -> tuple[Any, ...]:
    """Values in `STATE_COLUMNS` order."""
    return (
        s.status.value,
        s.streak,
        s.since,
        s.notified_since,
        s.last_fired_at,
        s.last_period,
        s.clear_streak,
        s.last_sent_at,
        s.repeats,
        s.extra_json(),
    )


def state_from_row(row: Sequence[Any]) -> SeriesState:
    """Inverse of `state_row`."""
    status, streak, since, notified, fired, last, clear, sent, repeats, extra = row
    return SeriesState(
        Status(status), int(streak), since, notified, fired, last, int(clear), sent, int(repeats)
    ).with_extra(extra)
