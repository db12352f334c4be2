"""The long-running daemon: wiring, scheduling, reload, signals, shutdown."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent

from detectkd.alerting.outage import Outages
from detectkd.alerting.silences import Silence, Silences
from detectkd.config.settings import Settings
from detectkd.errors import StorageError, error_line
from detectkd.resources import Resources
from detectkd.runtime import heap, retention
from detectkd.runtime.clock import ClockGuard
from detectkd.runtime.leader import leadership_for
from detectkd.runtime.metricset import MetricSet
from detectkd.runtime.outage_alerts import send_due, split_saved
from detectkd.runtime.outbox import Dispatcher
from detectkd.runtime.reload import Plan, ReloadQueue, make_plan
from detectkd.runtime.scheduler import GroupedScheduler
from detectkd.runtime.silence_sync import SilenceSync
from detectkd.runtime.slot import Deps, MetricSlot
from detectkd.runtime.view import DaemonView
from detectkd.sdnotify import Notifier
from detectkd.specs.loader import LoadResult, MetricSpec, load_for
from detectkd.storage.base import Store
from detectkd.storage.factory import DataStores, daemon_store
from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd")
RETENTION_JOB = "@retention"  # metric names cannot start with @


class Daemon(DaemonView):
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store: Store = store or daemon_store(settings)
        self.data_stores = DataStores()
        self.telemetry = Telemetry(settings.shard_of, settings.export_max_series)
        self.resources = Resources()
        self.resources.telemetry = self.telemetry
        self.config_errors: list[str] = []
        self.ready = False
        self.stop_event = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self.reloads = ReloadQueue(self._reload, self._reload_lock, self.telemetry)
        self.scheduler = GroupedScheduler(timezone="UTC")  # wakes on a 20 ms grid (`scheduler`)
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self.last_reload: dict[str, Any] = {}
        o = settings.outages
        self.outages = Outages(o.group_wait.total_seconds(), o.min_metrics)
        self._health_lock = asyncio.Lock()
        self.silences = Silences()
        self.silence_sync = SilenceSync(self.silences, self.store, self.telemetry.silences_unreadable.set)
        self.notifier = Notifier()
        outbox_due = asyncio.Event()  # rung by a commit with outbox rows, heard by the dispatcher
        self.deps = Deps(
            self.store,
            self.resources,
            self.data_stores,
            self.telemetry,
            outbox_due.set,
            settings.generator_url,
            self.silences,
        )
        self.leadership = leadership_for(settings, self.store, self.leading)
        self.metrics = MetricSet(
            self.deps, settings, self.scheduler, self.outages, self.leadership, self.check_health
        )
        self.runs, self.history, self.snapshots = (
            self.metrics.runs,
            self.metrics.history,
            self.metrics.snapshots,
        )
        self.dispatcher = Dispatcher(
            self.store, self.metrics.channel, self.telemetry, settings.alert_retry_for, doorbell=outbox_due
        )
        self.dispatcher.mine = settings.shard_of.owns  # shards may share one store
        if (lead := self.leadership) is not None:
            self.dispatcher.may_send = lambda: lead.leader
            self.telemetry.leader.set(0)

    @property
    def specs(self) -> dict[str, MetricSpec]:
        """Every loaded metric (enabled or not), by name."""
        return self.metrics.specs

    @property
    def slots(self) -> dict[str, MetricSlot]:
        """The running metrics (enabled, built), by name."""
        return self.metrics.slots

    def may_run(self) -> bool:
        """False on a standby of an HA pair: it runs nothing (checks, history loading)."""
        return self.runs.may_run()

    async def run_metric(self, name: str, at: float | None = None, scheduled: bool = True) -> None:
        """Run the metric's newest due period now (`Runs.run_metric`)."""
        await self.runs.run_metric(name, at, scheduled)

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
        heap.map_large()  # a scrape's large blocks go back to the system when freed
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
            self.retention_pass,
            "interval",
            hours=24,
            id=RETENTION_JOB,
            name=RETENTION_JOB,
            next_run_time=datetime.now(UTC) + timedelta(minutes=10),
            max_instances=1,
            coalesce=True,
        )
        await self.metrics.apply(plan, states)
        self.snapshots.taken()
        for metric, st in errors.items():
            self.outages.restore(metric, st)
        self._record_load(result, plan)
        self.ready = True
        self.notifier.ready(self.status_line())
        log.info(
            "detectkd started",
            metrics=len(self.slots),
            config_errors=len(result.all_errors()),
            shard=self.settings.shard,
            store=str(getattr(self.store, "path", "")),
        )

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
        log.info("shutting down", inflight=len(self.runs.inflight))
        # Runs in flight get the grace: no new runs start, and the scheduler (whose executor
        # cancels what it still tracks) is shut down only after they finished or timed out.
        deadline = time.monotonic() + self.settings.shutdown_grace.total_seconds()
        self.scheduler.pause()
        await self.history.stop()  # a batch in flight is redone by the next start
        await self.runs.drain(deadline - time.monotonic())
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
        return await retention.daily(
            list(self.slots.values()),
            self.store,
            self.settings.retention_days,
            self.telemetry,
            time.time() if now is None else now,
        )

    async def close(self) -> None:
        self.notifier.close()
        await self.metrics.close()
        await self.data_stores.close()
        await self.resources.close()
        await self.store.close()

    # -- config --------------------------------------------------------------------------

    async def _load(self) -> LoadResult:
        s = self.settings
        # Parsing thousands of YAML files is CPU work: keep the loop (and /healthz) responsive.
        return (await asyncio.to_thread(load_for, s)).only(s.shard_of)

    def _record_load(self, result: LoadResult, plan: Plan) -> None:
        errors = result.all_errors()
        self.config_errors = [str(i) for i in errors]
        for issue in errors:
            log.error("config error", file=issue.file, line=issue.line, key=issue.key, error=issue.message)
        for issue in result.warnings:
            log.warning(
                "config warning", file=issue.file, line=issue.line, key=issue.key, warning=issue.message
            )
        ok = not errors
        self.telemetry.reload_ok.set(1 if ok else 0)
        if ok:
            self.telemetry.reload_ts.set(time.time())
        self.last_reload = {
            "at": time.time(),
            "successful": ok,
            "errors": self.config_errors,
            **plan.summary(),
        }
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
            await self.metrics.apply(plan, {})
        except StorageError as exc:  # nothing was swapped: the previous set keeps running
            log.error("reload not applied", error=error_line(exc))
            self.telemetry.reload_ok.set(0)
            self.notifier.ready(self.status_line() + ", last reload failed")
            return {"successful": False, "errors": [f"reload not applied: {error_line(exc)}"]}
        # Recorded after applying: whoever sees the new summary sees the new metrics.
        self._record_load(result, plan)
        self.notifier.ready(self.status_line())
        log.info("config reloaded", reason=reason, **plan.summary(), errors=len(self.config_errors))
        return self.last_reload

    # -- runs ----------------------------------------------------------------------------

    async def leading(self, leader: bool) -> None:
        """The election's news (its `on_change`). Became leader: what the previous leader
        committed is the truth (alert states, watermarks, windows: `MetricSet.adopt`;
        silences); the outbox is read by the dispatcher as it is. Deposed: no history loads."""
        self.telemetry.leader.set(1 if leader else 0)
        if not leader:
            await self.history.pause()
            return
        saved, errors = split_saved(await self.store.load_states(), self.outages)
        self.metrics.adopt(saved)
        for metric, st in errors.items():
            self.outages.restore(metric, st)
        await self.silence_sync.refresh(force=True)
        self.dispatcher.wake()
        self.metrics.resume_history()

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
                self.metrics.retry_unbuilt()  # the metrics whose runtime failed to build, when due

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
