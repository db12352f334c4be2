"""The long-running daemon: wiring, scheduling, reload, signals, shutdown."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from detectkd.alerting.channels.base import Channel
from detectkd.alerting.channels.channelset import ChannelSet
from detectkd.alerting.outage import Outages
from detectkd.alerting.silences import Silence, Silences
from detectkd.alerting.state import SeriesState
from detectkd.config.settings import Settings
from detectkd.errors import StorageError, error_line
from detectkd.resources import Resources
from detectkd.runtime import heap, retention
from detectkd.runtime.clock import ClockGuard
from detectkd.runtime.history import HistoryLoader
from detectkd.runtime.jobs import Jobs
from detectkd.runtime.leader import leadership_for
from detectkd.runtime.outage_alerts import send_due, split_saved
from detectkd.runtime.outbox import Dispatcher
from detectkd.runtime.reload import Action, Plan, ReloadQueue, make_plan
from detectkd.runtime.silence_sync import SilenceSync
from detectkd.runtime.slot import Deps, MetricSlot, assemble, assemble_loader
from detectkd.runtime.snapshots import Snapshots
from detectkd.runtime.view import DaemonView
from detectkd.sdnotify import Notifier
from detectkd.specs.loader import LoadResult, MetricSpec, load_for
from detectkd.storage.base import Store
from detectkd.storage.factory import DataStores, daemon_store
from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd")
RETENTION_JOB = "@retention"  # metric names cannot start with @


class Daemon(Jobs, DaemonView):
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store: Store = store or daemon_store(settings)
        self.data_stores = DataStores()
        self.telemetry = Telemetry(settings.shard_of, settings.export_max_series)
        self.resources = Resources()
        self.resources.telemetry = self.telemetry
        self.specs: dict[str, MetricSpec] = {}
        self.slots: dict[str, MetricSlot] = {}  # running metrics (enabled, built)
        self.config_errors: list[str] = []
        self.ready = False
        self.stop_event = asyncio.Event()
        self._inflight: set[asyncio.Task[Any]] = set()
        # Enabled metrics whose runtime failed to build: (error, states to carry, retry at).
        self._unbuilt: dict[str, tuple[str, dict[str, SeriesState], float]] = {}
        self._reload_lock = asyncio.Lock()
        self.reloads = ReloadQueue(self._reload, self._reload_lock, self.telemetry)
        self._sem = asyncio.Semaphore(settings.max_concurrent_checks)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self.dispatcher = Dispatcher(self.store, self._channel, self.telemetry, settings.alert_retry_for)
        self.dispatcher.mine = settings.shard_of.owns  # shards may share one store
        self.last_reload: dict[str, Any] = {}
        o = settings.outages
        self.outages = Outages(o.group_wait.total_seconds(), o.min_metrics)
        self._health_lock = asyncio.Lock()
        self.snapshots = Snapshots(settings, lambda: [s.runtime for s in self.slots.values()])  # memory
        self._retired: dict[str, ChannelSet] = {}  # removed metrics' channels
        self.silences = Silences()
        self.silence_sync = SilenceSync(self.silences, self.store, self.telemetry.silences_unreadable.set)
        self.notifier = Notifier()
        self.deps = Deps(self.store, self.resources, self.data_stores, self.telemetry, self.dispatcher.wake,
                         settings.generator_url, self.silences)  # fmt: skip
        self.leadership = leadership_for(settings, self.store, self._leading)
        self.history = HistoryLoader(self.store, settings.history, self._loader_slot, self._history_loaded,
                                     self.telemetry, self.may_run)  # fmt: skip
        if (lead := self.leadership) is not None:
            self.dispatcher.may_send = lambda: lead.leader
            self.telemetry.leader.set(0)

    # -- lifecycle ---------------------------------------------------------------------

    def install_signals(self) -> None:
        """Before anything slow: a SIGHUP during startup must queue a reload, not kill us."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_soon)

    def reload_soon(self, reason: str = "SIGHUP") -> asyncio.Task[dict[str, Any]]:
        """Request a reload (from a signal handler too); see `ReloadQueue`."""
        return self.reloads.request(reason)

    async def start(self) -> None:
        async with self._reload_lock:  # a reload requested meanwhile runs right after
            await self._start()

    async def _start(self) -> None:
        await self.store.open()
        await self.dispatcher.recover(self.settings.data_dir)  # nothing sent twice after a crash
        await self.history.open()
        await self.silence_sync.refresh()
        states, errors = split_saved(await self.store.load_states(), self.outages)
        result = await self._load()
        plan = make_plan({}, result)
        await self.snapshots.load()
        self.scheduler.start()
        # Retention: daily, first ten minutes after start (not in the startup rush).
        self.scheduler.add_job(
            self.retention_pass, "interval", hours=24, id=RETENTION_JOB, name=RETENTION_JOB,
            next_run_time=datetime.now(UTC) + timedelta(minutes=10), max_instances=1, coalesce=True,
        )  # fmt: skip
        await self._apply(plan, states)
        self.snapshots.taken()
        for metric, st in errors.items():
            self.outages.restore(metric, st)
        self._record_load(result, plan)
        self.ready = True
        self.notifier.ready(self.status_line())
        log.info("detectkd started", metrics=len(self.slots), config_errors=len(result.all_errors()),
                 shard=self.settings.shard, store=str(getattr(self.store, "path", "")))  # fmt: skip

    async def serve(self) -> None:
        """Run until SIGTERM/SIGINT (or `stop_event`), then shut down gracefully."""
        dispatcher = asyncio.create_task(self.dispatcher.run(self.stop_event), name="outbox")
        if self.leadership is not None:
            election = asyncio.create_task(self.leadership.run(self.stop_event), name="election")
        health = asyncio.create_task(self._health_loop(), name="health")
        snapshots = asyncio.create_task(self.snapshots.run(self.stop_event), name="snapshots")
        watchdog = asyncio.create_task(self.notifier.beat(self.status_line, self.stop_event), name="watchdog")
        await self.stop_event.wait()
        self.notifier.stopping()
        await health
        await watchdog
        await snapshots  # a background write in progress is abandoned
        log.info("shutting down", inflight=len(self._inflight))
        # Runs in flight get the grace: no new runs start, and the scheduler (whose executor
        # cancels what it still tracks) is shut down only after they finished or timed out.
        deadline = time.monotonic() + self.settings.shutdown_grace.total_seconds()
        self.scheduler.pause()
        await self.history.stop()  # a batch in flight is redone by the next start
        await self._drain(deadline - time.monotonic())
        self.scheduler.shutdown(wait=False)
        await dispatcher
        # The last delivery attempt gets what is left of the grace (a hanging receiver cannot
        # hold the exit longer); what it cannot send stays in the outbox for the next start.
        try:
            await asyncio.wait_for(
                self.dispatcher.deliver_due(), timeout=max(0.5, deadline - time.monotonic())
            )
        except (TimeoutError, StorageError) as exc:
            log.warning("final outbox flush incomplete", error=str(exc) or "timeout")
        if self.leadership is not None:
            await election
            await self.leadership.release()  # a standby takes over now, not after the lease
        await self.snapshots.final()  # no run is in flight: memory holds still
        await self.close()

    async def retention_pass(self, now: float | None = None) -> int:
        """Daily: stored rows past their retention, and outbox rows sent a week ago."""
        return await retention.daily(list(self.slots.values()), self.store, self.settings.retention_days,
                                     self.telemetry, time.time() if now is None else now)  # fmt: skip

    async def close(self) -> None:
        self.notifier.close()
        await self.history.stop()
        for slot in self.slots.values():
            await slot.stop()
        await self.data_stores.close()
        await self.resources.close()
        await self.store.close()

    async def _drain(self, grace: float) -> None:
        tasks = set(self._inflight)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
            log.warning("runs cancelled at shutdown", count=len(pending))

    # -- config --------------------------------------------------------------------------

    async def _load(self) -> LoadResult:
        s = self.settings
        # Parsing thousands of YAML files is CPU work: keep the loop (and /healthz) responsive.
        return (await asyncio.to_thread(load_for, s)).only(s.shard_of)

    def _record_load(self, result: LoadResult, plan: Plan) -> None:
        errors = result.all_errors()
        self.config_errors = [str(i) for i in errors]
        for issue in errors:
            log.error("config error", file=issue.file, line=issue.line, key=issue.key,
                      error=issue.message)  # fmt: skip
        for issue in result.warnings:
            log.warning("config warning", file=issue.file, line=issue.line, key=issue.key,
                        warning=issue.message)  # fmt: skip
        ok = not errors
        self.telemetry.reload_ok.set(1 if ok else 0)
        if ok:
            self.telemetry.reload_ts.set(time.time())
        self.last_reload = {"at": time.time(), "successful": ok, "errors": self.config_errors,
                            **plan.summary()}  # fmt: skip
        heap.settle()  # the config's objects live until the next reload: collections skip them

    async def reload(self, reason: str = "reload") -> dict[str, Any]:
        """Reload now, or join the reload already waiting for its turn; returns its result."""
        return await self.reload_soon(reason)

    async def _reload(self, reason: str) -> dict[str, Any]:
        """One reload; the caller holds the reload lock."""
        if not self.ready:
            return {"successful": False, "errors": ["the daemon did not start"]}
        self.notifier.reloading()
        try:
            result = await self._load()
        except Exception as exc:  # never let a reload kill the daemon
            log.error("reload failed", error=error_line(exc))
            self.telemetry.reload_ok.set(0)
            self.notifier.ready(self.status_line() + ", last reload failed")
            return {"successful": False, "errors": [error_line(exc)]}
        plan = make_plan(self.specs, result)
        try:
            await self._apply(plan, {})
        except StorageError as exc:  # nothing was swapped: the previous set keeps running
            log.error("reload not applied", error=error_line(exc))
            self.telemetry.reload_ok.set(0)
            self.notifier.ready(self.status_line() + ", last reload failed")
            return {"successful": False, "errors": [f"reload not applied: {error_line(exc)}"]}
        # Recorded after applying: whoever sees the new summary sees the new metrics.
        self._record_load(result, plan)
        self.notifier.ready(self.status_line())
        log.info("config reloaded", reason=reason, **plan.summary(),
                 errors=len(self.config_errors))  # fmt: skip
        return self.last_reload

    async def _apply(self, plan: Plan, states: dict[str, dict[str, SeriesState]]) -> None:
        """Apply a plan atomically: new slots are built and stored alert state is reset
        before anything running is touched; a `StorageError` there leaves the previous set
        running (and raises). Only then are the old slots swapped out, each after its run
        in flight has finished."""
        A = Action
        restart = plan.names(A.RESTART_KEEPING_STATE, A.RESTART_RESETTING_STATE)
        built = {name: self._build(plan.target[name], states.get(name, {})) for name in plan.added + restart}
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
            await self._retire(name)
        for name in restart:
            old = self.slots.get(name)
            new = built[name]
            if old is not None:
                async with old.runtime.lock:  # a run in flight finishes first
                    if new is not None and plan.actions[name] is A.RESTART_KEEPING_STATE:
                        new.runtime.states = dict(old.runtime.states)
                    await self._retire(name, forget=False)
            self._install(plan.target[name], new)
        for name in plan.added:
            self._install(plan.target[name], built[name])
        self.specs = dict(plan.target)
        self.telemetry.metrics_configured.set(len(self.slots))

    def _build(self, spec: MetricSpec, states: dict[str, SeriesState]) -> MetricSlot | None:
        """The metric's slot; None when it is disabled or cannot be built (then it shows as
        an error and `retry_unbuilt` tries again)."""
        if not spec.config.enabled:
            return None
        try:
            return assemble(spec, self.deps, states)
        except Exception as exc:
            delay = min(max(spec.config.schedule.interval.total_seconds(), 5.0), 300.0)
            self._unbuilt[spec.name] = (error_line(exc), dict(states), time.monotonic() + delay)
            log.error("metric failed to start", metric=spec.name, error=error_line(exc), retry_in_s=delay)
            return None

    def _install(self, spec: MetricSpec, slot: MetricSlot | None) -> None:
        self.specs[spec.name] = spec
        if slot is None:
            return
        self._unbuilt.pop(spec.name, None)
        self._retired.pop(spec.name, None)
        self.slots[spec.name] = slot
        self.snapshots.offer(slot.runtime)
        slot.runtime.history = self.history.begin
        self.history.start(slot.runtime)
        cond = spec.conditions
        self.outages.track(spec.name, slot.source, cond.on_error == "error", cond.error_runs)
        self.scheduler.add_job(
            self._job,
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
        for name, (_, states, due) in list(self._unbuilt.items()):
            spec = self.specs.get(name)
            if spec is None or not spec.config.enabled or name in self.slots:
                self._unbuilt.pop(name, None)
                continue
            if at >= due:
                self._install(spec, self._build(spec, states))
                if name in self.slots:
                    started.append(name)
        return started

    async def _retire(self, name: str, forget: bool = True) -> None:
        """Stop a metric's slot: unscheduled, its run in flight cancelled, its collector
        closed; `forget` (removed, not restarted): its telemetry and outage tracking too."""
        self._unbuilt.pop(name, None)
        await self.history.cancel(name)
        if self.scheduler.get_job(name) is not None:
            self.scheduler.remove_job(name)
        slot = self.slots.pop(name, None)
        if slot is not None:
            for task in list(self._inflight):
                if task.get_name() == f"run:{name}":
                    task.cancel()
            if forget and self.may_run() and await slot.resolve_alerts(self.store):
                self._retired[name] = slot.channels  # where those RESOLVED go
                self.dispatcher.wake()
            await slot.stop()
        if forget:
            self.specs.pop(name, None)
            self.telemetry.forget(name)
            self.outages.forget(name)

    def _loader_slot(self, metric: str) -> MetricSlot | None:
        slot = self.slots.get(metric)
        return assemble_loader(slot.spec, self.deps) if slot is not None else None

    def _history_loaded(self, metric: str) -> None:
        if (slot := self.slots.get(metric)) is not None:
            slot.runtime.reload_windows()
            self.judge_warmed(metric)

    def _channel(self, metric: str, channel: str) -> Channel | None:
        slot = self.slots.get(metric)
        channels = slot.channels if slot is not None else self._retired.get(metric)
        return channels.get(channel) if channels is not None else None

    # -- runs ----------------------------------------------------------------------------

    async def _leading(self, leader: bool) -> None:
        """Became leader: what the previous leader committed is the truth (alert states,
        watermarks, windows, silences); the outbox is read by the dispatcher as it is."""
        self.telemetry.leader.set(1 if leader else 0)
        if not leader:
            await self.history.pause()
            return
        saved, errors = split_saved(await self.store.load_states(), self.outages)
        for name, slot in self.slots.items():
            slot.runtime.states = dict(saved.get(name, {}))
            slot.runtime.reload_windows()
        for metric, st in errors.items():
            self.outages.restore(metric, st)
        await self.silence_sync.refresh(force=True)
        self.dispatcher.wake()
        for slot in self.slots.values():
            self.history.start(slot.runtime)

    async def _health_loop(self) -> None:
        """Notifications that become due with time (group_wait), not with a run; silences
        added by `detectkd silence` (another process) are read every `silence_refresh`; a
        backward step of the wall clock re-anchors the schedule (it would stall every run)."""
        tick = max(0.2, min(5.0, self.outages.group_wait / 4, self.settings.silence_refresh.total_seconds()))
        refreshed, clock = time.monotonic(), ClockGuard(self.scheduler)
        while not self.stop_event.is_set():
            try:
                await asyncio.wait_for(self.stop_event.wait(), timeout=tick)
            except TimeoutError:
                clock.check()
                if time.monotonic() - refreshed >= self.settings.silence_refresh.total_seconds():
                    refreshed = time.monotonic()
                    await self.silence_sync.refresh()
                await self.check_health()
                self.retry_unbuilt()  # the metrics whose runtime failed to build, when due

    # -- silences, ERROR and SOURCE DOWN ---------------------------------------------------

    async def save_silence(self, s: Silence) -> None:
        await self.silence_sync.save(s)  # SilenceLimitError: a new one over MAX_SILENCES

    async def check_health(self, at: float | None = None) -> None:
        async with self._health_lock:
            now = int(time.time() if at is None else at)
            s = self  # a standby re-sends nothing (its commits would be refused)
            if await send_due(s.outages, s.silences, s.store, s.specs, s.series_labels, now, s.may_run()):
                self.dispatcher.wake()

    def _on_missed(self, event: JobExecutionEvent) -> None:
        self.telemetry.missed.labels(event.job_id).inc()
