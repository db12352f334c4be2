"""The running metric set: what the daemon runs and how a reload changes it.

A `MetricSet` owns the loaded specs, the running slots, the enabled metrics whose slot
failed to build (retried), the removed metrics' channels (kept until their RESOLVEDs are
delivered) and the memory snapshot (`runtime.snapshots`: the previous process's memory,
offered to each metric as it is installed; written in the background and at a stop).
It applies a reload `Plan` (`runtime.reload.make_plan`) atomically, and it
holds the two things that act on every installed metric: its runs (`runtime.jobs.Runs`,
one job per metric on the scheduler) and its history loading (`runtime.history`).

The daemon composes it with the view, the outbox dispatcher (which finds a row's channel
with `channel`) and the election; nobody reaches into it but through these methods.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from detectkd.alerting.channels.base import Channel
from detectkd.alerting.channels.channelset import ChannelSet
from detectkd.alerting.outage import Outages
from detectkd.alerting.state import SeriesState
from detectkd.config.settings import Settings
from detectkd.errors import error_line
from detectkd.runtime.history import HistoryLoader
from detectkd.runtime.jobs import Runs
from detectkd.runtime.leader import Leadership
from detectkd.runtime.loading import PointsLoad
from detectkd.runtime.reload import Action, Plan
from detectkd.runtime.slot import Deps, MetricSlot, Wrap, assemble, assemble_loader, assemble_points
from detectkd.runtime.snapshots import Snapshots
from detectkd.specs.loader import MetricSpec

log = structlog.get_logger("detectkd")


class MetricSet:
    def __init__(
        self,
        deps: Deps,
        settings: Settings,
        scheduler: AsyncIOScheduler,
        outages: Outages,
        leadership: Leadership | None,
        health: Callable[[], Awaitable[None]],
    ) -> None:
        """`deps`: what every slot shares (`deps.wake` rings the outbox dispatcher);
        `health`: checks ERROR and SOURCE DOWN, called after a run that owes one."""
        assert deps.telemetry is not None
        self.deps = deps
        self.store = deps.store
        self.telemetry = deps.telemetry
        self.scheduler = scheduler
        self.outages = outages
        self.specs: dict[str, MetricSpec] = {}
        self.slots: dict[str, MetricSlot] = {}  # running metrics (enabled, built)
        # Enabled metrics whose runtime failed to build: (error, states to carry, retry at).
        self.unbuilt: dict[str, tuple[str, dict[str, SeriesState], float]] = {}
        self.retired: dict[str, ChannelSet] = {}  # removed metrics' channels
        self.snapshots = Snapshots(settings, lambda: [s.runtime for s in self.slots.values()], self.telemetry)
        self.runs = Runs(self.slots, settings, self.telemetry, outages, leadership, health)
        self.history = HistoryLoader(
            self.store,
            settings.history,
            self.loader_slot,
            self.loaded,
            self.telemetry,
            self.runs.may_run,
            points=self.loader_points,
        )

    async def apply(self, plan: Plan, states: dict[str, dict[str, SeriesState]]) -> None:
        """Apply a plan atomically: new slots are built and stored alert state is reset
        before anything running is touched; a `StorageError` there leaves the previous set
        running (and raises). Only then are the old slots swapped out, each after its run
        in flight has finished."""
        A = Action
        restart = plan.names(A.RESTART_KEEPING_STATE, A.RESTART_RESETTING_STATE)
        built = {name: self.build(plan.target[name], states.get(name, {})) for name in plan.added + restart}
        try:
            for name in plan.names(A.RESTART_RESETTING_STATE):
                if name in self.slots:
                    await self.store.drop_states(name)
            for name, renames in plan.renames.items():
                await self.store.outbox_rechannel(name, renames)
        except BaseException:
            for slot in built.values():
                if slot is not None:
                    await slot.stop()
            raise
        for name in plan.removed:
            await self.retire(name)
        for name in restart:
            old = self.slots.get(name)
            new = built[name]
            if old is not None:
                async with old.runtime.lock:  # a run in flight finishes first
                    if new is not None and plan.actions[name] is A.RESTART_KEEPING_STATE:
                        new.runtime.states = dict(old.runtime.states)
                    await self.retire(name, forget=False)
            self.install(plan.target[name], new)
        for name in plan.added:
            self.install(plan.target[name], built[name])
        self.specs = dict(plan.target)
        self.telemetry.metrics_configured.set(len(self.slots))

    def build(self, spec: MetricSpec, states: dict[str, SeriesState]) -> MetricSlot | None:
        """The metric's slot; None when it is disabled or cannot be built (then it shows as
        an error and `retry_unbuilt` tries again)."""
        if not spec.config.enabled:
            return None
        try:
            return assemble(spec, self.deps, states)
        except Exception as exc:
            delay = min(max(spec.config.schedule.interval.total_seconds(), 5.0), 300.0)
            self.unbuilt[spec.name] = (error_line(exc), dict(states), time.monotonic() + delay)
            log.error("metric failed to start", metric=spec.name, error=error_line(exc), retry_in_s=delay)
            return None

    def install(self, spec: MetricSpec, slot: MetricSlot | None) -> None:
        self.specs[spec.name] = spec
        if slot is None:
            return
        self.unbuilt.pop(spec.name, None)
        self.retired.pop(spec.name, None)
        self.slots[spec.name] = slot
        self.snapshots.offer(slot.runtime)
        slot.runtime.history = self.history.begin
        slot.runtime.cold.hook = self.history.judge_again
        slot.runtime.fresh.hook = lambda series, rt=slot.runtime: self.history.load_series(rt, series)
        self.history.start(slot.runtime)
        cond = spec.conditions
        self.outages.track(spec.name, slot.source, cond.on_error == "error", cond.error_runs)
        self.scheduler.add_job(
            self.runs.job,
            slot.trigger,
            args=[spec.name],
            id=spec.name,
            name=spec.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(spec.config.schedule.interval.total_seconds())),
            replace_existing=True,
        )

    def retry_unbuilt(self, now: float | None = None) -> list[str]:
        """Try again to start the metrics whose runtime failed to build, once their retry
        time has come (called from the health loop). Returns the names started."""
        at = time.monotonic() if now is None else now
        started = []
        for name, (_, states, due) in list(self.unbuilt.items()):
            spec = self.specs.get(name)
            if spec is None or not spec.config.enabled or name in self.slots:
                self.unbuilt.pop(name, None)
                continue
            if at >= due:
                self.install(spec, self.build(spec, states))
                if name in self.slots:
                    started.append(name)
        return started

    async def retire(self, name: str, forget: bool = True) -> None:
        """Stop a metric's slot: unscheduled, its run in flight cancelled, its collector
        closed; `forget` (removed, not restarted): its telemetry and outage tracking too."""
        self.unbuilt.pop(name, None)
        await self.history.cancel(name)
        if self.scheduler.get_job(name) is not None:
            self.scheduler.remove_job(name)
        slot = self.slots.pop(name, None)
        if slot is not None:
            self.runs.cancel(name)
            if forget and self.runs.may_run() and await slot.resolve_alerts(self.store):
                self.retired[name] = slot.channels  # where those RESOLVEDs go
                if self.deps.wake is not None:
                    self.deps.wake()
            await slot.stop()
        if forget:
            self.specs.pop(name, None)
            self.telemetry.forget(name)
            self.outages.forget(name)

    def loader_slot(self, metric: str, wrap: Wrap) -> MetricSlot | None:
        """A slot of the metric's own for its history loader, its collector `wrap`ped;
        None: it is not running."""
        slot = self.slots.get(metric)
        return assemble_loader(slot.spec, self.deps, wrap) if slot is not None else None

    def loader_points(self, metric: str, wrap: Wrap) -> PointsLoad | None:
        """What a points-only load of the metric's history needs (a warm-up's, a fill's),
        its collector `wrap`ped; None: it is not running."""
        slot = self.slots.get(metric)
        return assemble_points(slot, self.deps, wrap) if slot is not None else None

    def loaded(self, metric: str, again: int | None = None) -> asyncio.Task[None] | None:
        """The metric's history is loaded: windows re-read on its next run, judged now (the
        run's task, if one was started); `again`: the periods live runs committed from there
        on are judged again with it on its next run (`runtime.coldjudge`)."""
        if (slot := self.slots.get(metric)) is not None:
            slot.runtime.reload_windows()
            if again is not None:
                slot.runtime.cold.due(again)
            return self.runs.judge_warmed(metric)
        return None

    def channel(self, metric: str, channel: str) -> Channel | None:
        """Where the outbox dispatcher sends a row of `metric` to its `channel`."""
        slot = self.slots.get(metric)
        channels = slot.channels if slot is not None else self.retired.get(metric)
        return channels.get(channel) if channels is not None else None

    def adopt(self, states: dict[str, dict[str, SeriesState]]) -> None:
        """Became leader: every metric takes the alert states the previous leader committed
        and re-reads its windows (and watermark) on its next run."""
        for name, slot in self.slots.items():
            slot.runtime.states = dict(states.get(name, {}))
            slot.runtime.reload_windows()

    def resume_history(self) -> None:
        """Work on every installed metric's history job again (a new leader)."""
        for slot in self.slots.values():
            self.history.start(slot.runtime)

    async def close(self) -> None:
        await self.history.stop()
        for slot in self.slots.values():
            await slot.stop()
