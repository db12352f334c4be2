"""`shadow:` variants at runtime: judged beside their metric on the same collected points,
never notifying. Each variant has its own detectors, windows and alert states; its would-be
notifications are stored (`StateStore.shadow_commit`) with the metric's own, the base of the
comparison (`runtime.shadow_compare`).

The runner calls `ShadowSet.run` after its run's commit succeeded, with the points it
judged: nothing is collected again, and a metric without variants pays one truth test.
A variant that fails (a store error, a detector raising) is logged, counted and shown,
its memory reset (read again from the stored points on its next run), and the metric's own
run is untouched. A variant's alert states are stored as one document per variant with
its `fingerprint`: a restart or a reload keeps them while the variant's judging is the
same, and starts it afresh when it changed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog

from detectkd.alerting.alert import Alert
from detectkd.alerting.state import SeriesState, Status, state_from_row, state_row
from detectkd.collectors.points import Point
from detectkd.detectors import registry as detector_registry
from detectkd.detectors.base import Current, Detector, History, Result
from detectkd.errors import error_line
from detectkd.runtime.judge import JudgeContext, Outcome, judge
from detectkd.runtime.memory import SeriesMemory
from detectkd.runtime.offloop import sized
from detectkd.runtime.peers import PeerGraph
from detectkd.runtime.shadow_compare import LIVE
from detectkd.specs.model import MetricSpec, ShadowSpec
from detectkd.storage.base import ShadowAlert, StateStore
from detectkd.storage.window import read_window
from detectkd.telemetry import Telemetry
from detectkd.timegrid import Grid

if TYPE_CHECKING:
    from detectkd.runtime.runner import MetricRuntime

log = structlog.get_logger("detectkd.shadow")


@dataclass
class Variant:
    spec: ShadowSpec
    ctx: JudgeContext
    memory: SeriesMemory
    states: dict[str, SeriesState]
    error: str | None = None
    alerts: int = 0  # would-be notifications stored by this runtime

    def api(self) -> dict[str, Any]:
        firing = sum(st.status == Status.FIRING for st in self.states.values())
        return {"name": self.spec.name, "firing": firing, "alerts": self.alerts, "error": self.error}


def variant_spec(spec: MetricSpec, v: ShadowSpec) -> MetricSpec:
    """The metric judged as the variant: its detectors and conditions, no alerters (no outbox
    row can come of it)."""
    storage = replace(spec.storage, save_detections=False)  # nothing of its record is written
    return replace(spec, detectors=v.detectors, conditions=v.conditions, alerters=(), storage=storage)


class Recorded:
    """One of the metric's own detectors in a variant that changes only conditions: its
    results are the metric's, of the run just judged (`table`), so no detector runs twice;
    a point the metric did not judge is detected by `inner` (the variant's own instance)."""

    def __init__(self, inner: Detector, index: int, table: dict[tuple[str, int], list[Result]]) -> None:
        self.id = inner.id
        self.inner, self.index, self.table = inner, index, table

    def detect(self, history: History, point: Current) -> Result:
        found = self.table.get((point.series, point.time))
        return found[self.index] if found is not None else self.inner.detect(history, point)

    def window_seconds(self, interval_seconds: int) -> int:
        """None: the results come with the run, so the variant keeps no window of its own
        (no memory, no read from the store). What could tell: a point the metric did not
        judge (`inner` judges it on a short history), and the band's lower bound in a
        would-be alert of a series that went below zero only long ago (read as 0)."""
        return 0

    def feature_names(self) -> tuple[str, ...]:
        return self.inner.feature_names()


class ShadowSet:
    def __init__(
        self,
        spec: MetricSpec,
        grid: Grid,
        tz: ZoneInfo,
        ctx: JudgeContext,
        telemetry: Telemetry | None,
        reuse: bool = True,
    ) -> None:
        """`reuse`: variants with the metric's own detectors take its results (`Recorded`)."""
        self.name = spec.name
        self.telemetry = telemetry
        self.variants: list[Variant] = []
        self.loaded = False  # the variants' states read from the store
        self.table: dict[tuple[str, int], list[Result]] = {}  # the metric's results, this run
        self.reuse = False
        for v in spec.shadows:
            vspec = variant_spec(spec, v)
            detectors: list[Detector] = []
            same = reuse and v.detectors == spec.detectors
            self.reuse |= same
            for k, d in enumerate(v.detectors):
                dtype = detector_registry.lookup(d.type)
                assert dtype is not None  # validated at load
                built = dtype.build(d.params, grid.step, d.id)
                detectors.append(Recorded(built, k, self.table) if same else built)
            peers = spec.config.peers
            graph = PeerGraph(peers, spec.entities) if peers is not None else None
            memory = SeriesMemory(detectors, grid, tz, graph)
            vctx = JudgeContext.of(vspec, detectors, grid, None, ctx.silenced)
            self.variants.append(Variant(v, replace(vctx, link=ctx.link), memory, {}))

    def __bool__(self) -> bool:
        return bool(self.variants)

    def reset(self) -> None:
        """Memory and states are read again from the store on the next run (history was
        loaded, or this replica became leader)."""
        for v in self.variants:
            v.memory.reset()
        self.loaded = False

    def api(self) -> list[dict[str, Any]]:
        return [v.api() for v in self.variants]

    async def run(
        self,
        rt: MetricRuntime,
        points: Sequence[Point],
        gaps: Sequence[Point],
        start: int,
        last: int,
        notify: bool,
        judged: Outcome,
    ) -> None:
        """Judge `points` (the metric's run `judged`, committed) with every variant; never
        raises (but lets cancellation through)."""
        if not self.variants:
            return
        if not self.loaded and not await self._load(rt.store):
            return
        live = judged.alerts
        if live:  # the metric's own notifications, what the variants are compared with: first,
            # so a reader that sees a variant's would-be alert of this run sees them too
            try:
                await rt.store.shadow_commit(self.name, LIVE, None, [self._row(LIVE, a) for a in live])
            except Exception as exc:
                log.warning(
                    "shadow: the metric's alerts not recorded", metric=self.name, error=error_line(exc)
                )
        if self.reuse:
            self.table.update(((r.point.series, r.point.period), r.results) for r in judged.reports)
        try:
            for v in self.variants:
                try:
                    await self._judge(rt, v, points, gaps, start, last, notify)
                except Exception as exc:  # a variant never fails its metric's run
                    self._failed(v, exc)
        finally:
            self.table.clear()

    async def _load(self, store: StateStore) -> bool:
        try:
            docs = await store.shadow_load(self.name)
            current = {v.spec.name for v in self.variants}
            for gone in sorted(set(docs) - current):  # a variant removed from the file
                await store.shadow_commit(self.name, gone, None, [])
                self._unlabel(gone)
        except Exception as exc:
            for v in self.variants:
                self._failed(v, exc)
            return False
        for v in self.variants:
            v.states = _states(docs.get(v.spec.name), v.spec.fingerprint)
        self.loaded = True
        return True

    async def _judge(
        self,
        rt: MetricRuntime,
        v: Variant,
        points: Sequence[Point],
        gaps: Sequence[Point],
        start: int,
        last: int,
        notify: bool,
    ) -> None:
        if not v.memory.loaded:
            span, step = v.memory.span, rt.grid.step
            stored = {}
            if rt.spec.storage.enabled and span > step:
                stored = await read_window(await rt.data(), self.name, start - span, start)
            await sized(sum(map(len, stored.values())), v.memory.load, stored)
        v.memory.begin(start)
        try:
            ctx = v.ctx.run(last, notify, gaps)
            out: Outcome = await sized(len(points), judge, points, v.memory, v.states, ctx)
            alerts = [self._row(v.spec.name, a) for a in out.alerts]
            if out.touched or out.forget or alerts:
                await rt.store.shadow_commit(
                    self.name, v.spec.name, _doc(out.states, v.spec.fingerprint), alerts
                )
        except BaseException:
            v.memory.rollback()
            raise
        v.memory.commit()
        v.states = out.states
        for series in out.forget:
            v.memory.forget(series)
        v.error = None
        if alerts:
            v.alerts += len(alerts)
            if self.telemetry is not None:
                self.telemetry.shadow_alerts.labels(self.name, v.spec.name).inc(len(alerts))

    def _unlabel(self, variant: str) -> None:
        """A removed variant's samples leave /metrics (a removed metric's go with it)."""
        if self.telemetry is not None:
            for family in (self.telemetry.shadow_alerts, self.telemetry.shadow_errors):
                with contextlib.suppress(KeyError):
                    family.remove(self.name, variant)

    def _row(self, variant: str, a: Alert) -> ShadowAlert:
        return ShadowAlert(self.name, variant, a.key, a.series, a.period, a.to_json())

    def _failed(self, v: Variant, exc: Exception) -> None:
        v.error = error_line(exc)
        v.memory.reset()  # read again from the stored points on its next run
        if self.telemetry is not None:
            self.telemetry.shadow_errors.labels(self.name, v.spec.name).inc()
        log.warning("shadow variant failed", metric=self.name, variant=v.spec.name, error=v.error)


def _doc(states: dict[str, SeriesState], fingerprint: str) -> str:
    rows = {series: list(state_row(st)) for series, st in sorted(states.items())}
    return json.dumps({"fingerprint": fingerprint, "states": rows}, separators=(",", ":"))


def _states(doc: str | None, fingerprint: str) -> dict[str, SeriesState]:
    """A stored document's states; none when the variant's judging changed since (or the
    document cannot be read: the variant starts afresh rather than failing)."""
    if doc is None:
        return {}
    try:
        data = json.loads(doc)
        if data.get("fingerprint") != fingerprint:
            return {}
        return {str(s): state_from_row(row) for s, row in data["states"].items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("shadow: a stored state was unreadable", error=error_line(exc))
        return {}
