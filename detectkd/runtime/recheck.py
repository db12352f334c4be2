"""Re-judging periods that late rows changed (`completeness.recheck`).

Before each run the periods already judged within `recheck` of the watermark are read from
the source again and compared with the values they were judged on (the series' window).
A value that moved by more than `tolerance` (relative) is judged again against the history
before it, and the series' alert state is revised (`alerting.revise`): a FIRING that no
longer holds is RESOLVED, marked retracted; an anomaly that appears late alerts, marked
late. The corrected points, the states and the notifications are one commit; the windows,
states and kept verdicts change only after it succeeded. Nothing is sent twice: a revision's
notification has its own outbox key, and a period re-judged once is not changed again
unless its value moves again.

The verdicts of the last judged periods are kept in memory (`remember`); after a restart a
series' FIRING is retracted only once the periods of its episode were judged again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from detectkd.alerting.revise import Revision, revise
from detectkd.alerting.state import SeriesState, decide
from detectkd.collectors.points import Point
from detectkd.detectors.base import Current, History, Result
from detectkd.runtime.collect import collect
from detectkd.runtime.completeness import agree
from detectkd.runtime.judge import PointReport, alert_for, outbox_rows
from detectkd.runtime.runner import MetricRuntime
from detectkd.storage.base import NewOutboxItem, RunRecord, StoredDetection

Judged = tuple[Point, list[Result], bool]


class Recheck:
    def __init__(self, rt: MetricRuntime) -> None:
        self.rt = rt
        cfg = rt.spec.config.completeness
        self.span = int(cfg.recheck.total_seconds()) if cfg is not None and cfg.recheck is not None else 0
        self.tolerance = cfg.tolerance if cfg is not None else 0.0
        self.kept: dict[str, dict[int, bool]] = {}  # series -> period -> anomalous

    def remember(self, reports: Sequence[PointReport]) -> None:
        """The verdicts a run gave (kept for `recheck` and the longest episode it may revise)."""
        if not self.span:
            return
        for pr in reports:
            self.kept.setdefault(pr.point.series, {})[pr.point.period] = pr.verdict.anomalous
        self._prune()

    def _prune(self) -> None:
        rt = self.rt
        keep = self.span + (rt.ctx.rules.required + rt.ctx.rules.clear + 2) * rt.grid.step
        for series, kept in list(self.kept.items()):
            newest = max(kept, default=0)
            self.kept[series] = {p: a for p, a in kept.items() if p > newest - keep}

    async def run(self, now: float | None = None) -> int:
        """Re-read the look-back, re-judge what changed; returns the periods re-judged."""
        rt = self.rt
        if not self.span:
            return 0
        async with rt.lock:
            wm = rt.settled
            if wm is None:
                return 0
            grid = rt.grid
            hi = grid.next(wm)
            lo = min(grid.floor(hi - self.span), grid.prev(hi))
            conv = await collect(rt.collector, rt.spec, grid, lo, hi, rt.many)
            changed = self._changed(conv.points)
            if not changed:
                return 0
            when = time.time() if now is None else now
            judged = {s: self._judge(s, pts) for s, pts in changed.items()}
            revisions = {s: self._revise(s, j, when) for s, j in judged.items()}
            record = self._record(judged, revisions)
            await _commit(rt, record)
            self._apply(judged, revisions)
            rt.status.revised += sum(len(j) for j in judged.values())
            if record.outbox:
                rt.on_alert()
            return sum(len(j) for j in judged.values())

    def _changed(self, points: list[Point]) -> dict[str, list[Point]]:
        """The points whose value differs from the one their period was judged on."""
        out: dict[str, list[Point]] = {}
        for p in sorted(points, key=lambda p: p.period):
            w = self.rt.memory.windows.get(p.series)
            if w is None:
                continue
            h = w.history()
            i = int(np.searchsorted(h.times, p.period))
            if i >= len(h) or int(h.times[i]) != p.period:
                continue  # not judged on this grid (or already out of the window)
            old = float(h.values[i])
            before = {p.series: None if old != old else old}
            if not agree(before, {p.series: p.value}, self.tolerance):
                out.setdefault(p.series, []).append(p)
        return out

    def _judge(self, series: str, points: list[Point]) -> list[Judged]:
        """Each changed point against the history before it (earlier corrections applied)."""
        rt = self.rt
        memory = rt.memory
        kept = memory.checkpoints(series)  # (`auto`'s weekly profile, as before the re-judging)
        h = memory.windows[series].history()
        times, values = h.times.copy(), h.values.copy()
        feats = {k: v.copy() for k, v in h.features.items()}
        out: list[Judged] = []
        for p in points:
            i = int(np.searchsorted(times, p.period))
            before = History(times[:i], values[:i], {k: v[:i] for k, v in feats.items()}, 0)
            fe = memory.features_at(p.period, p.context) if memory.features else {}
            current = Current(p.period, p.value, fe, series)
            results = [d.detect(before, current) for d in rt.detectors]
            verdict = decide(results, rt.spec.conditions)
            values[i] = np.nan if p.value is None else p.value
            out.append((p, results, verdict.anomalous))
        memory.rederive(series, kept)  # caches of the old values dropped (review: the profile too)
        return out

    def _revise(self, series: str, judged: list[Judged], now: float) -> Revision:
        rt = self.rt
        kept = dict(self.kept.get(series, {}))
        kept.update({p.period: anomalous for p, _, anomalous in judged})
        state = rt.states.get(series, SeriesState())
        # No late FIRING while silenced, nor where peer verification would have to agree
        # (peers are compared within one run's period; a re-judged period has no such view).
        may = not rt.ctx.silenced(series, now) and rt.spec.conditions.peers == "any"
        rev = revise(state, kept, [p.period for p, _, _ in judged], rt.ctx.rules, may)
        return replace(rev, state=replace(rev.state, fired_by=_fired_by(rev, judged))) if rev.revised else rev

    def _record(self, judged: dict[str, list[Judged]], revisions: dict[str, Revision]) -> RunRecord:
        rt = self.rt
        spec = rt.spec
        record = RunRecord(rt.name, save_points=spec.storage.enabled)
        for series, items in judged.items():
            record.points.extend(p for p, _, _ in items)
            if spec.storage.save_detections:
                record.detections.extend(
                    StoredDetection(series, p.period, r) for p, rs, _ in items for r in rs
                )
            rev = revisions[series]
            if rev.state is rt.states.get(series):
                continue
            record.states[series] = rev.state
            record.outbox.extend(self._rows(series, items, rev))
        return record

    def _rows(self, series: str, items: list[Judged], rev: Revision) -> list[NewOutboxItem]:
        rt = self.rt
        point, results, _ = next((i for i in items if i[0].period == rev.period), items[-1])
        old = rt.states.get(series, SeriesState())
        named = next((r for r in results if r.detector == old.fired_by), None)
        verdict = decide(results, rt.spec.conditions)
        if named is not None and rev.revised == "retracted":
            verdict = replace(verdict, primary=named)
        report = PointReport(point, results, verdict, rev.state, rev.notices)
        rows: list[NewOutboxItem] = []
        for notice in rev.notices:
            alert = alert_for(point, report, notice, rt.ctx)
            extra = {**alert.extra, "revised": rev.revised, "reason": rev.reason}
            rows.extend(outbox_rows(replace(alert, revised=rev.revised, extra=extra), rt.spec))
        return rows

    def _apply(self, judged: dict[str, list[Judged]], revisions: dict[str, Revision]) -> None:
        rt = self.rt
        for series, items in judged.items():
            window = rt.memory.windows.get(series)
            for p, _, anomalous in items:
                if window is not None:
                    fe = rt.memory.features_at(p.period, p.context) if rt.memory.features else {}
                    window.add(p.period, p.value, fe)  # replaces the judged value
                self.kept.setdefault(series, {})[p.period] = anomalous
            rev = revisions[series]
            if rev.state is not rt.states.get(series):
                rt.states[series] = rev.state
        self._prune()


def _fired_by(rev: Revision, items: list[Judged]) -> str | None:
    if rev.revised != "late":
        return rev.state.fired_by
    results = next((rs for p, rs, _ in items if p.period == rev.period), [])
    hit = max((r for r in results if r.anomaly), key=lambda r: r.score, default=None)
    return hit.detector if hit is not None else rev.state.fired_by


async def _commit(rt: MetricRuntime, record: RunRecord) -> None:
    """As the runner commits: data first when it lives elsewhere (a failure redoes the recheck)."""
    data = await rt.data()
    if data is rt.store:
        await rt.store.commit(record)
        return
    if record.save_points and (record.points or record.detections):
        await data.commit(RunRecord(rt.name, record.points, record.detections, save_points=True))
    await rt.store.commit(RunRecord(rt.name, states=record.states, outbox=record.outbox, save_points=False))
