"""What a run decides without detecting: a failed run's `on_error` policy (its newest due
period judged ok, alerting or no data for every known series) and a removed metric's
RESOLVEDs. The judging core is `runtime.judge`."""

from __future__ import annotations

from collections.abc import Mapping

from detectkd.alerting import resend
from detectkd.alerting.state import Notice, SeriesState, Verdict, step
from detectkd.collectors.points import Point
from detectkd.runtime.judge import JudgeContext, Outcome, PointReport, alert_for, outbox_rows, resend_due
from detectkd.storage.base import RunRecord

ON_ERROR = {
    "ok": Verdict(False, None),
    "alerting": Verdict(True, None),
    "nodata": Verdict(False, None, judged=False, missing=True),
}


def judge_failed_run(
    known: set[str], states: Mapping[str, SeriesState], period: int, now: float, ctx: JudgeContext
) -> Outcome | None:
    """`on_error: ok | alerting | nodata`: the newest due `period` of every `known` series
    judged that way after a failed run; None when the policy is `error` (nothing judged)."""
    verdict = ON_ERROR.get(ctx.spec.conditions.on_error)
    if verdict is None:
        return None
    out = Outcome(states=dict(states))
    out.record = RunRecord(ctx.spec.name, save_points=False)
    for series in sorted(known):
        may = not ctx.silenced(series, now)
        new, notices = step(out.states.get(series, SeriesState()), period, verdict, ctx.rules, may)
        out.states[series] = out.touched[series] = out.record.states[series] = new
        point = Point(series, period, None)
        report = PointReport(point, [], verdict, new, notices)
        out.reports.append(report)
        for notice in notices:
            alert = alert_for(point, report, notice, ctx)
            out.alerts.append(alert)
            out.record.outbox.extend(outbox_rows(alert, ctx.spec))
        if ctx.resend_every:
            resend_due(point, report, ctx, out)
            out.record.states[series] = out.states[series]
    return out


def resolve_removed(states: Mapping[str, SeriesState], ctx: JudgeContext, now: int) -> RunRecord:
    """A metric removed by reload: a RESOLVED of every active alert of its series to each
    of its alerters, and those series' alert states dropped (added back, it starts afresh)."""
    record = RunRecord(ctx.spec.name, save_points=False)
    for series, state in sorted(states.items()):
        owed = resend.active(state)
        period = state.last_period if state.last_period is not None else ctx.grid.floor(now)
        report = PointReport(Point(series, period, None), [], Verdict(False, None), state, [])
        for n in owed:
            alert = alert_for(report.point, report, Notice("resolved", n.episode, n.kind), ctx)
            record.outbox.extend(outbox_rows(alert, ctx.spec))
        if owed:
            record.forget.append(series)
    return record
