"""Re-judging a series after late rows changed periods it had judged: a pure function of its
alert state and the verdicts of its recently judged periods (`runtime.recheck` feeds it).

- **Retracted**: the series' FIRING was sent, a period of its episode changed, and with the
  corrected verdicts no `required` anomalous periods in a row remain in the episode: the
  episode is withdrawn, one RESOLVED is owed, marked `retracted`.
- **Late**: the series was not FIRING and a changed period is now anomalous, completing a
  run of `required` anomalous periods: the FIRING is owed now, marked `late`. When normal
  periods followed it, the episode resolves as usual at the next normal period.

A flapping series is left to the state machine (its notifications are held anyway), and a
series whose episode began before the periods kept is never retracted (nothing proves it
no longer holds).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

from detectkd.alerting.state import Notice, Rules, SeriesState, Status

RETRACTED = "retracted: the period was incomplete when judged"
LATE = "late: the period changed after it was first judged"


@dataclass(frozen=True)
class Revision:
    state: SeriesState
    notices: list[Notice] = field(default_factory=list)
    revised: str | None = None  # "retracted" | "late"
    reason: str | None = None
    period: int | None = None  # the changed period the notification describes


def revise(
    state: SeriesState,
    verdicts: Mapping[int, bool],
    changed: Collection[int],
    rules: Rules,
    may_fire: bool = True,
) -> Revision:
    """`verdicts`: period -> anomalous for the kept judged periods, corrections applied;
    `changed`: the periods whose value changed. `may_fire` false (silenced): no late FIRING."""
    if not changed or state.flapping_since is not None:
        return Revision(state)
    periods = sorted(verdicts)
    last = state.last_period if state.last_period is not None else (periods[-1] if periods else None)
    if state.status is Status.FIRING:
        return _retract(state, verdicts, periods, changed, rules, last)
    if state.notified_since is None and may_fire:
        return _late(state, verdicts, periods, changed, rules)
    return Revision(state)


def _retract(
    state: SeriesState,
    verdicts: Mapping[int, bool],
    periods: list[int],
    changed: Collection[int],
    rules: Rules,
    last: int | None,
) -> Revision:
    sent = state.notified_since
    if sent is None or last is None or sent not in verdicts or not any(sent <= c <= last for c in changed):
        return Revision(state)
    episode = [p for p in periods if sent <= p <= last]
    if _longest(episode, verdicts)[1] >= rules.required:
        return Revision(state)  # still holds
    trail = _trailing(episode, verdicts)
    new = replace(
        state,
        status=Status.PENDING if trail else Status.OK,
        streak=len(trail),
        since=trail[0] if trail else None,
        notified_since=None,
        clear_streak=0,
        repeats=0,
        last_fired_at=None,
        fired_by=None,
    )
    at = max(c for c in changed if sent <= c <= last)
    return Revision(new, [Notice("resolved", sent)], "retracted", RETRACTED, at)


def _late(
    state: SeriesState,
    verdicts: Mapping[int, bool],
    periods: list[int],
    changed: Collection[int],
    rules: Rules,
) -> Revision:
    runs = [r for r in _runs(periods, verdicts) if len(r) >= rules.required and any(c in r for c in changed)]
    if not runs:
        return Revision(state)
    run = runs[-1]
    after = [p for p in periods if p > run[-1]]
    normal_after = len(after)  # the run is the last one containing a change: what follows is normal
    ongoing = not after
    new = replace(
        state,
        status=Status.FIRING,
        streak=len(run) if ongoing else 0,
        since=run[0],
        notified_since=run[0],
        clear_streak=min(normal_after, rules.clear - 1),
        last_fired_at=state.last_period,
        last_sent_at=state.last_period,
        repeats=0,
    )
    at = max(c for c in changed if c in run)
    return Revision(new, [Notice("firing", run[0])], "late", LATE, at)


def _runs(periods: list[int], verdicts: Mapping[int, bool]) -> list[list[int]]:
    """Maximal runs of anomalous periods, in order."""
    out: list[list[int]] = []
    cur: list[int] = []
    for p in periods:
        if verdicts[p]:
            cur.append(p)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _longest(periods: list[int], verdicts: Mapping[int, bool]) -> tuple[list[int], int]:
    runs = _runs(periods, verdicts)
    best = max(runs, key=len, default=[])
    return best, len(best)


def _trailing(periods: list[int], verdicts: Mapping[int, bool]) -> list[int]:
    out: list[int] = []
    for p in reversed(periods):
        if not verdicts[p]:
            break
        out.append(p)
    return out[::-1]
