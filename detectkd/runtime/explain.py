"""Why a FIRING fired, beyond its baseline: the value and the change in words, how rare its
deviation is for its series (`alerting.rarity`) and the last similar episode with its
feedback label. Between judging and the commit, one call per run: `Explainer.explain`.

- **Change**: the value against the expected value ("value 820, 34 % below expected 1,240").
- **Rarity**: the FIRING's score among the same series' and detector's scores of the last
  14 days before its period ("beyond 99.7 % of its deviations in the last 14 days"). The
  scores are kept in memory (`ScoreBook`), counted from every judged point; the first run
  (and the first after the windows are read again, e.g. a first start's history loaded)
  reads the stored detections of up to 14 days before it once (at most `SEED_ROWS` rows,
  the newest whole days that fit, within `SEED_TIMEOUT_S`). Said only with at least
  `MIN_SCORES` scores over at least a day; fewer days than 14 are named as they are.
- **Precedent**: the most recent earlier FIRING episode of the same series in the same
  direction (its start is kept in the series' alert state, `SeriesState.similar`, so a
  restart or a replay knows it without a query), with the feedback label that covers that
  start: a label spans at most 90 days, so it is among those put on the series in the 90
  days up to the start, read newest first (`feedback_near`: the key's index, a limit).

Nothing here fails a run: an error leaves the alert without the line it would have made
(logged once). A replay (backtest) sees no labels: its precedents name no label.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from detectkd.alerting import why
from detectkd.alerting.alert import Alert
from detectkd.alerting.feedback import MAX_SPAN_S, Feedback
from detectkd.alerting.rarity import DAY, DAYS, ScoreBook
from detectkd.alerting.state import SeriesState, Status
from detectkd.errors import error_line
from detectkd.runtime.judge import JudgeContext, Outcome, PointReport
from detectkd.runtime.memory import SeriesMemory
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import DataStore, RunRecord, StateStore

log = structlog.get_logger("detectkd.explain")

MIN_SCORES = 100  # fewer earlier scores: no rarity is said
SEED_ROWS = 100_000  # stored detections the first run reads at most
OFF_LOOP_SEED = 1_000  # more of them are counted in a worker thread (none: a first start's)
SEED_TIMEOUT_S = 10.0
LABEL_TIMEOUT_S = 5.0  # for all of a run's label reads together
MAX_LOOKUPS = 100  # precedents per run whose label is read (the rest name none)
NEAR_LABELS = 20  # labels read per precedent (those put on the 90 days up to its start, newest first)
KEPT = 2  # episode starts kept per direction (the current one and the one before)


def remember(similar: tuple[int, ...], since: int, direction: str | None) -> tuple[int, ...]:
    """An episode start joins `similar` (signed: + above, - below), newest first, `KEPT` per direction."""
    if direction not in ("up", "down"):
        return similar
    signed = since if direction == "up" else -since
    if signed in similar:
        return similar
    ups = sorted([s for s in (*similar, signed) if s > 0], reverse=True)[:KEPT]
    downs = sorted([s for s in (*similar, signed) if s < 0])[:KEPT]
    return tuple(ups + downs)


def last_similar(similar: tuple[int, ...], started_at: int, direction: str | None) -> int | None:
    """The newest episode start before `started_at` in `direction`."""
    sign = 1 if direction == "up" else -1 if direction == "down" else 0
    found = [abs(s) for s in similar if s * sign > 0 and abs(s) < started_at]
    return max(found) if found else None


def label_of(labels: list[Feedback], series: str, started_at: int) -> str | None:
    """The label that covers the episode's first period (labelling an alert puts it there)."""
    found = [f for f in labels if f.series == series and f.covers(started_at)]
    return max(found, key=lambda f: f.at).label if found else None


class Explainer:
    """A metric's explanations: its score book, and whether the stored scores were read."""

    def __init__(self, spec: MetricSpec, tz: ZoneInfo, memory: SeriesMemory) -> None:
        self.spec = spec
        self.tz = tz
        self.memory = memory
        self.book = ScoreBook()
        self.seeded = -1  # the `memory.resets` the book was read from the store for (-1: never)
        self._warned = False

    async def explain(
        self,
        out: Outcome,
        ctx: JudgeContext,
        before: Mapping[str, SeriesState],
        data: Callable[[], Awaitable[DataStore]],
        state: StateStore,
    ) -> RunRecord:
        """The run's FIRING payloads with `change`, `rarity` and `precedent`; the scores it
        judged held for the next run; the episodes it fired kept in the states. Returns the
        record to commit (`out.record`, changed in place). A run that notifies nothing
        (history) is left alone."""
        if not out.reports or not ctx.notify:
            return out.record
        try:
            await self._explain(out, before, data, state, ctx.replay)
        except Exception as exc:  # never fails a run: the alerts go out without the lines
            if not self._warned:
                self._warned = True
                log.warning("alert explanation failed", metric=self.spec.name, error=error_line(exc))
        return out.record

    async def _explain(
        self,
        out: Outcome,
        before: Mapping[str, SeriesState],
        data: Callable[[], Awaitable[DataStore]],
        state: StateStore,
        replay: bool,
    ) -> None:
        start = min(pr.point.period for pr in out.reports)
        self.book.settle(start)
        for series in out.forget:
            self.book.forget(series)
        if self.seeded != self.memory.resets:  # first run, or the windows were read again (history loaded)
            self.book, self.seeded = ScoreBook(), self.memory.resets
            try:
                await self._seed(start, len(out.states) or 1, data)
            except asyncio.CancelledError:
                self.seeded = -1  # the run was cancelled: the next one reads them
                raise
            except Exception as exc:  # counted from the live runs on (fewer days said)
                log.warning("stored scores not read for rarity", metric=self.spec.name, error=error_line(exc))
        firing = _firing(out)
        similar = {s: st.similar for s, st in before.items()}
        found: dict[tuple[str, int, int], dict[str, Any]] = {}
        for pr in out.reports:
            p = pr.point
            for alert in firing.get((p.series, p.period), []):
                found[(alert.series, alert.period, alert.started_at)] = self._why(
                    alert, similar.get(p.series, ())
                )
            self._note(pr, similar)
        if any("precedent_at" in w for w in found.values()):
            await self._label(found, state, replay)
        self._rewrite(out, found)
        self._keep(out, similar)

    async def _seed(self, start: int, series: int, data: Callable[[], Awaitable[DataStore]]) -> None:
        """The stored scores of the newest whole days before `start` that fit `SEED_ROWS`."""
        st = self.spec.storage
        if not (st.enabled and st.save_detections):
            return
        per_day = (
            series
            * len(self.spec.detectors)
            * DAY
            / max(1, self.spec.config.schedule.interval.total_seconds())
        )
        days = min(DAYS, int(SEED_ROWS // max(1.0, per_day)))
        if days < 1:
            return
        store = await data()
        since = (start // DAY - days + 1) * DAY if days < DAYS else start - DAYS * DAY
        # Not `wait_for`: on Python 3.11 it returns a read that completed as the run was
        # cancelled (a reload, a shutdown), and the run went on to commit (cpython gh-86296).
        async with asyncio.timeout(SEED_TIMEOUT_S):
            rows = await store.read_detections(self.spec.name, since, start)

        def count() -> ScoreBook:  # in a worker thread: 100,000 rows take about 0.1 s
            book = ScoreBook()
            for d in sorted(rows, key=lambda d: d.period):
                if d.result.skipped is None and d.result.value is not None:
                    book.add(d.series, d.result.detector, d.period, d.result.score)
            return book

        self.book = await asyncio.to_thread(count) if len(rows) > OFF_LOOP_SEED else count()

    def _note(self, pr: PointReport, similar: dict[str, tuple[int, ...]]) -> None:
        """A judged point's scores held for the next runs; a FIRING's episode start kept."""
        p = pr.point
        for r in pr.results:
            if r.skipped is None and r.value is not None:
                self.book.pend(p.series, r.detector, p.period, r.score)
        st = pr.state
        if (
            st.status == Status.FIRING
            and st.since is not None
            and pr.verdict.anomalous
            and pr.verdict.primary
        ):
            similar[p.series] = remember(similar.get(p.series, ()), st.since, pr.verdict.primary.direction)

    def _why(self, alert: Alert, similar: tuple[int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        said = why.change(alert.value, alert.expected)
        if said is not None:
            out["change"] = said
        if alert.detector is not None and alert.score is not None:
            rank = self.book.rank(alert.series, alert.detector, alert.period, alert.score)
            rare = (
                why.rarity(rank.below, rank.total, rank.days) if rank and rank.total >= MIN_SCORES else None
            )
            if rare is not None and rank is not None:
                out |= {"rarity": rare[0], "rarity_percent": rare[1], "rarity_days": rank.days}
        before = last_similar(similar, alert.started_at, alert.direction)
        if before is not None:
            out["precedent_at"] = before
        return out

    async def _label(
        self, found: dict[tuple[str, int, int], dict[str, Any]], state: StateStore, replay: bool
    ) -> None:
        """The precedents with their labels: one bounded read per precedent (`feedback_near`),
        at most `MAX_LOOKUPS` a run, all within `LABEL_TIMEOUT_S`; the rest, and a replay's,
        name no label. A failed read leaves the precedents out."""
        wanted = sorted({(s, w["precedent_at"]) for (s, _, _), w in found.items() if "precedent_at" in w})
        looked = wanted[:0] if replay else wanted[:MAX_LOOKUPS]
        try:
            async with asyncio.timeout(LABEL_TIMEOUT_S):  # (not `wait_for`: see `_seed`)
                labels = await self._labels(state, looked)
        except Exception as exc:
            log.warning(
                "feedback not read: precedents left out", metric=self.spec.name, error=error_line(exc)
            )
            for w in found.values():
                w.pop("precedent_at", None)
            return
        for (series, _, _), w in found.items():
            at = w.pop("precedent_at", None)
            if at is None:
                continue
            known = (series, at) in labels
            label = labels.get((series, at))
            w["precedent"] = why.precedent(at, label, self.tz, known=known)
            w["precedent_at"] = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
            w["precedent_label"] = label or ""

    async def _labels(
        self, state: StateStore, wanted: list[tuple[str, int]]
    ) -> dict[tuple[str, int], str | None]:
        """(series, episode start) -> the label covering that start, or None (not labelled)."""
        out: dict[tuple[str, int], str | None] = {}
        for series, at in wanted:
            texts = await state.feedback_near(self.spec.name, series, at - MAX_SPAN_S, at, NEAR_LABELS)
            out[(series, at)] = label_of([Feedback.from_json(t) for t in texts], series, at)
        return out

    def _rewrite(self, out: Outcome, found: dict[tuple[str, int, int], dict[str, Any]]) -> None:
        """The explained alerts, in `out.alerts` and in every outbox row that carries one."""

        def explained(alert: Alert) -> Alert:
            w = found.get((alert.series, alert.period, alert.started_at))
            return replace(alert, extra=alert.extra | w) if w else alert

        out.alerts = [explained(a) if _is_firing(a) else a for a in out.alerts]
        rows = out.record.outbox
        for i, row in enumerate(rows):
            alert = Alert.from_json(row.payload)
            if _is_firing(alert) and found.get((alert.series, alert.period, alert.started_at)):
                rows[i] = replace(row, payload=explained(alert).to_json())

    def _keep(self, out: Outcome, similar: dict[str, tuple[int, ...]]) -> None:
        """The episodes fired this run, in the states to adopt and to commit."""
        for series, starts in similar.items():
            now = out.states.get(series)
            if now is None or starts == now.similar:
                continue
            new = replace(now, similar=starts)
            out.states[series] = new
            if series in out.touched:
                out.touched[series] = new
            if series in out.record.states:
                out.record.states[series] = new


def _is_firing(alert: Alert) -> bool:
    return alert.kind == "anomaly" and alert.status == "firing"


def _firing(run: Outcome) -> dict[tuple[str, int], list[Alert]]:
    """The run's FIRING anomaly alerts and those of its outbox rows (Alertmanager's re-sends
    are only there), by (series, period), once each."""
    out: dict[tuple[str, int], list[Alert]] = {}
    seen: set[str] = set()
    for alert in (*run.alerts, *(Alert.from_json(row.payload) for row in run.record.outbox)):
        if _is_firing(alert) and alert.key not in seen:
            seen.add(alert.key)
            out.setdefault((alert.series, alert.period), []).append(alert)
    return out
