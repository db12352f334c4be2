"""The long-running daemon: wiring, scheduling, reload, signals, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from detectkd.alerting.channels import registry as channel_registry
from detectkd.alerting.channels.base import Channel
from detectkd.alerting.outage import ERROR_SERIES, SOURCE_PREFIX, HealthNotice, Outages, source_key
from detectkd.alerting.outage_alerts import notice_record
from detectkd.alerting.outbox import Dispatcher
from detectkd.alerting.silences import (
    Labels,
    Silence,
    Silences,
    load_silences,
    metric_labels,
    series_labels,
)
from detectkd.alerting.state import SeriesState
from detectkd.config.loader import LoadResult, MetricSpec, load_metrics
from detectkd.config.plan import Plan, make_plan
from detectkd.config.settings import Settings
from detectkd.errors import StorageError
from detectkd.resources import Resources
from detectkd.runner import MetricRuntime, error_line
from detectkd.scheduler import GridTrigger, stable_offset
from detectkd.sdnotify import Notifier
from detectkd.storage.base import Store
from detectkd.storage.factory import DataStores
from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd")
RETENTION_JOB = "@retention"  # metric names cannot start with @


class Daemon:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store: Store = store or settings.make_store()
        self.data_stores = DataStores()
        self.telemetry = Telemetry()
        self.resources = Resources()
        self.specs: dict[str, MetricSpec] = {}
        self.runtimes: dict[str, MetricRuntime] = {}
        self.triggers: dict[str, GridTrigger] = {}
        self.channels: dict[tuple[str, int], Channel] = {}
        self.config_errors: list[str] = []
        self.ready = False
        self.stop_event = asyncio.Event()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._reloads: set[asyncio.Task[dict[str, Any]]] = set()  # reloads started by SIGHUP
        # Enabled metrics whose runtime failed to build: (error, states to carry, retry at).
        self._unbuilt: dict[str, tuple[str, dict[str, SeriesState], float]] = {}
        self._reload_lock = asyncio.Lock()
        self._sem = asyncio.Semaphore(settings.max_concurrent_checks)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self.dispatcher = Dispatcher(self.store, self._channel, self.telemetry, settings.alert_retry_for)
        self.last_reload: dict[str, Any] = {}
        o = settings.outages
        self.outages = Outages(o.group_wait.total_seconds(), o.min_metrics)
        self._health_lock = asyncio.Lock()
        self.silences = Silences()
        self._labels: dict[str, dict[str, str | tuple[str, ...]]] = {}
        self.notifier = Notifier()

    # -- lifecycle ---------------------------------------------------------------------

    def install_signals(self) -> None:
        """Before anything slow: a SIGHUP during startup must queue a reload, not kill us."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_soon)

    def reload_soon(self, reason: str = "SIGHUP") -> asyncio.Task[dict[str, Any]]:
        """Start a reload from a signal handler: the task is kept until it is done and its
        failure is logged and counted (never an unretrieved task exception)."""
        task = asyncio.ensure_future(self.reload(reason))
        self._reloads.add(task)
        task.add_done_callback(self._reload_done)
        return task

    def _reload_done(self, task: asyncio.Task[dict[str, Any]]) -> None:
        self._reloads.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("reload failed", error=error_line(exc))
            self.telemetry.reload_ok.set(0)

    async def start(self) -> None:
        async with self._reload_lock:  # a reload requested meanwhile runs right after
            await self._start()

    async def _start(self) -> None:
        await self.store.open()
        await self.refresh_silences()
        saved = await self.store.load_states()
        states: dict[str, dict[str, SeriesState]] = defaultdict(dict)
        errors: dict[str, SeriesState] = {}
        for (metric, series), st in saved.items():
            if metric.startswith(SOURCE_PREFIX):
                self.outages.restore_source(metric.removeprefix(SOURCE_PREFIX), st)
            elif series == ERROR_SERIES:
                errors[metric] = st
            else:
                states[metric][series] = st
        result = await self._load()
        plan = make_plan({}, result)
        self.scheduler.start()
        # Retention: daily, first ten minutes after start (not in the startup rush).
        self.scheduler.add_job(
            self.retention_pass, "interval", hours=24, id=RETENTION_JOB, name=RETENTION_JOB,
            next_run_time=datetime.now(UTC) + timedelta(minutes=10), max_instances=1, coalesce=True,
        )  # fmt: skip
        await self._apply(plan, states)
        for metric, st in errors.items():
            self.outages.restore(metric, st)
        self._record_load(result, plan)
        self.ready = True
        self.notifier.ready(self.status_line())
        log.info(
            "detectkd started",
            metrics=len(self.runtimes),
            config_errors=len(result.all_errors()),
            store=str(getattr(self.store, "path", "")),
        )

    async def serve(self) -> None:
        """Run until SIGTERM/SIGINT (or `stop_event`), then shut down gracefully."""
        dispatcher = asyncio.create_task(self.dispatcher.run(self.stop_event), name="outbox")
        health = asyncio.create_task(self._health_loop(), name="health")
        watchdog = asyncio.create_task(self._watchdog_loop(), name="watchdog")
        await self.stop_event.wait()
        self.notifier.stopping()
        await health
        await watchdog
        log.info("shutting down", inflight=len(self._inflight))
        self.scheduler.shutdown(wait=False)
        await self._drain(self.settings.shutdown_grace.total_seconds())
        try:
            await asyncio.wait_for(self.dispatcher.deliver_due(), timeout=5)
        except (TimeoutError, StorageError) as exc:
            log.warning("final outbox flush incomplete", error=str(exc) or "timeout")
        await dispatcher
        await self.close()

    async def _watchdog_loop(self) -> None:
        """WATCHDOG=1 at half systemd's WatchdogSec, from this loop: a hung loop stops the
        pings. STATUS= is refreshed on the same beat (or every 10 s without a watchdog)."""
        period = self.notifier.watchdog_seconds
        if not self.notifier.enabled:
            return
        beat = period / 2 if period else 10.0
        status = ""
        while not self.stop_event.is_set():
            if period:
                self.notifier.watchdog()
            line = self.status_line()
            if line != status:
                self.notifier.status(line)
                status = line
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=beat)

    async def retention_pass(self, now: float | None = None) -> int:
        """Delete stored datapoints and detections past their retention, per metric and store.
        Never inside a detector's window: the cutoff is at least the window's span back."""
        now = time.time() if now is None else now
        deleted = 0
        for name, rt in list(self.runtimes.items()):
            storage = rt.spec.storage
            days = storage.datapoints_retention_days or self.settings.retention_days
            det_days = storage.detections_retention_days or days
            if not storage.enabled or (days is None and det_days is None):
                continue
            floor = now - rt.span - rt.grid.step
            try:
                store = await rt.data()
                if days is not None:
                    deleted += await store.delete_before(name, int(min(now - days * 86400, floor)))
                if det_days is not None and (days is None or det_days < days):
                    cutoff = int(min(now - det_days * 86400, floor))
                    deleted += await store.delete_before(name, cutoff, detections_only=True)
            except StorageError as exc:
                log.warning("retention failed", metric=name, error=str(exc))
        self.telemetry.retention_deleted.inc(deleted)
        self.telemetry.retention_last.set(time.time())
        log.info("retention pass", deleted_rows=deleted, metrics=len(self.runtimes))
        return deleted

    def status_line(self) -> str:
        """systemd's STATUS=: what `systemctl status detectkd` shows."""
        failing = sum(1 for rt in self.runtimes.values() if rt.status.state == "error")
        firing = sum(1 for rt in self.runtimes.values() if rt.status.state == "firing")
        line = f"{len(self.runtimes)} metrics, {failing} failing, {firing} firing"
        if self.config_errors:
            line += f", {len(self.config_errors)} config errors"
        return line

    async def close(self) -> None:
        self.notifier.close()
        for rt in self.runtimes.values():
            await rt.close()
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
        return await asyncio.to_thread(load_metrics, [s.metrics_dir], s.profiles_file)

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

    async def reload(self, reason: str = "reload") -> dict[str, Any]:
        async with self._reload_lock:
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
            await self._apply(plan, {})
            # Recorded after applying: whoever sees the new summary sees the new metrics.
            self._record_load(result, plan)
            self.notifier.ready(self.status_line())
            log.info("config reloaded", reason=reason, **plan.summary(),
                     errors=len(self.config_errors))  # fmt: skip
            return self.last_reload

    async def _apply(self, plan: Plan, states: dict[str, dict[str, SeriesState]]) -> None:
        for name in plan.removed:
            await self._stop_metric(name)
        for name in plan.changed:
            old = self.runtimes.get(name)
            new_spec = plan.target[name]
            carried: dict[str, SeriesState] = {}
            if old is not None:
                async with old.lock:  # let a run in flight finish first
                    if old.spec.detector_fingerprint == new_spec.detector_fingerprint:
                        carried = dict(old.states)
                    else:
                        await self.store.drop_states(name)
                await self._stop_metric(name, forget=False)
            self._start_metric(new_spec, carried)
        for name in plan.added:
            self._start_metric(plan.target[name], states.get(name, {}))
        self.specs = dict(plan.target)
        self.telemetry.metrics_configured.set(len(self.runtimes))

    def _start_metric(self, spec: MetricSpec, states: dict[str, SeriesState]) -> None:
        self.specs[spec.name] = spec
        if not spec.config.enabled:
            return
        source = source_key(spec.collector)
        self._labels[spec.name] = metric_labels(spec.name, spec.config.tags, source)
        try:
            rt = MetricRuntime(
                spec,
                self.store,
                self.resources,
                self.telemetry,
                states,
                self.dispatcher.wake,
                self.data_stores.getter(spec.storage.enabled, spec.storage.type, spec.storage.params),
                self.settings.generator_url,
                self.silences.predicate(self._labels[spec.name]),
            )
        except Exception as exc:  # shown as the metric's error and retried (`retry_unbuilt`)
            delay = min(max(spec.config.schedule.interval.total_seconds(), 5.0), 300.0)
            self._unbuilt[spec.name] = (error_line(exc), dict(states), time.monotonic() + delay)
            log.error("metric failed to start", metric=spec.name, error=error_line(exc), retry_in_s=delay)
            return
        self._unbuilt.pop(spec.name, None)
        self.runtimes[spec.name] = rt
        cond = spec.conditions
        self.outages.track(spec.name, source, cond.on_error == "error", cond.error_runs)
        for a in spec.alerters:
            ctype = channel_registry.lookup(a.type)
            if ctype is not None:
                self.channels[(spec.name, a.index)] = ctype.build(a.params, self.resources)
        sched = spec.config.schedule
        trigger = GridTrigger(rt.grid, sched.delay, stable_offset(spec.name, sched.interval))
        self.triggers[spec.name] = trigger
        self.scheduler.add_job(
            self._job,
            trigger,
            args=[spec.name],
            id=spec.name,
            name=spec.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(sched.interval.total_seconds())),
            replace_existing=True,
        )

    def retry_unbuilt(self, now: float | None = None) -> list[str]:
        """Try again to start the metrics whose runtime failed to build, once their retry
        time has come (called from the health loop). Returns the names started."""
        at = time.monotonic() if now is None else now
        started = []
        for name, (_, states, due) in list(self._unbuilt.items()):
            spec = self.specs.get(name)
            if spec is None or not spec.config.enabled or name in self.runtimes:
                self._unbuilt.pop(name, None)
                continue
            if at >= due:
                self._start_metric(spec, states)
                if name in self.runtimes:
                    started.append(name)
        return started

    async def _stop_metric(self, name: str, forget: bool = True) -> None:
        self._unbuilt.pop(name, None)
        if self.scheduler.get_job(name) is not None:
            self.scheduler.remove_job(name)
        rt = self.runtimes.pop(name, None)
        self.triggers.pop(name, None)
        for key in [k for k in self.channels if k[0] == name]:
            del self.channels[key]
        if rt is not None:
            for task in list(self._inflight):
                if task.get_name() == f"run:{name}":
                    task.cancel()
            await rt.close()
        if forget:
            self.specs.pop(name, None)
            self.telemetry.forget(name)
            self.outages.forget(name)

    def _channel(self, metric: str, index: int) -> Channel | None:
        return self.channels.get((metric, index))

    # -- runs ----------------------------------------------------------------------------

    async def _job(self, name: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.set_name(f"run:{name}")
        self._inflight.add(task)
        try:
            await self.run_metric(name)
        finally:
            self._inflight.discard(task)

    async def run_metric(self, name: str, at: float | None = None) -> None:
        rt = self.runtimes.get(name)
        trigger = self.triggers.get(name)
        if rt is None or trigger is None:
            return
        now = time.time() if at is None else at
        scheduled = trigger.latest_at_or_before(now)
        self.telemetry.lag.observe(max(0.0, now - scheduled))
        timeout = (self.settings.run_timeout or rt.interval).total_seconds()
        finish = rt.finish_for(scheduled)
        ok = False
        async with self._sem:
            started = time.monotonic()
            try:
                async with asyncio.timeout(timeout):
                    await rt.run(finish)
                ok = True
            except TimeoutError:  # the run was cancelled: count it like any failed run
                rt.record_failure(f"{name}: run exceeded {timeout:g}s and was cancelled", started)
                log.warning("check failed", metric=name, error=rt.status.last_error)
            except Exception:
                log.warning(
                    "check failed",
                    metric=name,
                    profile=rt.spec.collector.profile,
                    source=rt.spec.collector.type,
                    error=rt.status.last_error,
                )
        owed = self.outages.observe(name, ok, int(time.time()), rt.status.last_error or "")
        if not ok:
            try:
                await rt.judge_failure(finish)
            except Exception as exc:  # the store may be what failed
                log.warning("on_error policy not applied", metric=name, error=error_line(exc))
        if owed:
            await self.check_health()

    # -- ERROR and SOURCE DOWN ------------------------------------------------------------

    async def _health_loop(self) -> None:
        """Notifications that become due with time (group_wait), not with a run; silences
        added by `detectkd silence` (another process) are read every `silence_refresh`."""
        tick = max(0.2, min(5.0, self.outages.group_wait / 4, self.settings.silence_refresh.total_seconds()))
        refreshed = time.monotonic()
        while not self.stop_event.is_set():
            try:
                await asyncio.wait_for(self.stop_event.wait(), timeout=tick)
            except TimeoutError:
                if time.monotonic() - refreshed >= self.settings.silence_refresh.total_seconds():
                    refreshed = time.monotonic()
                    await self.refresh_silences()
                await self.check_health()
                if self._unbuilt:
                    self.retry_unbuilt()

    # -- silences ------------------------------------------------------------------------

    async def refresh_silences(self) -> None:
        try:
            texts = await self.store.silences_load()
        except StorageError as exc:
            log.warning("silences not refreshed", error=str(exc))
            return
        loaded, problems = load_silences(texts)
        for problem in problems:
            log.warning("unreadable silence skipped", error=problem)
        self.silences.replace_all(loaded)

    async def save_silence(self, s: Silence) -> None:
        await self.store.silence_save(s.id, s.to_json(), s.ends_at)
        self.silences.items[s.id] = s

    def series_labels(self, metric: str, series: str) -> Labels:
        return series_labels(self._labels.get(metric, {"metric": metric}), series)

    def _notice_silenced(self, n: HealthNotice, now: float) -> bool:
        if n.kind == "error":
            return self.silences.silenced(self.series_labels(n.subject, ""), now)
        return self.silences.silenced({"source": n.subject}, now)

    async def check_health(self, at: float | None = None) -> None:
        async with self._health_lock:
            now = int(time.time() if at is None else at)
            for notice in self.outages.due(now):
                if notice.status == "firing" and self._notice_silenced(notice, now):
                    continue  # still owed: sent when the silence is over, if it still fails
                try:
                    await self.store.commit(notice_record(notice, self.outages, self.specs))
                except StorageError as exc:
                    log.warning("error notification not stored", subject=notice.subject, error=str(exc))
                    continue
                self.outages.sent(notice)
                log.warning(f"{notice.kind} {notice.status}", subject=notice.subject,
                            members=len(notice.members) or None, error=notice.error or None)  # fmt: skip
                self.dispatcher.wake()

    def _on_missed(self, event: JobExecutionEvent) -> None:
        self.telemetry.missed.labels(event.job_id).inc()

    # -- API ---------------------------------------------------------------------------

    def api_metrics(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in sorted(self.specs):
            rt = self.runtimes.get(name)
            if rt is None:
                entry: dict[str, Any] = {"name": name, "state": "disabled", "file": self.specs[name].file}
                unbuilt = self._unbuilt.get(name)
                if unbuilt is not None:  # enabled, but its runtime failed to build: retried
                    entry |= {"state": "error", "last_error": f"{name}: metric failed to start: {unbuilt[0]}"}
                out.append(entry)
                continue
            item = rt.api()
            job = self.scheduler.get_job(name) if self.scheduler.running else None
            next_run = getattr(job, "next_run_time", None) if job is not None else None
            item["next_run"] = next_run.isoformat() if next_run else None
            h = self.outages.metrics.get(name)
            if h is not None:
                item["source"] = h.source
                item["error_notified"] = h.notified is not None
            item["silenced_by"] = self._silenced_by(name, list(rt.states))
            out.append(item)
        return out

    def _silenced_by(self, metric: str, series: list[str]) -> list[str]:
        now = time.time()
        ids: dict[str, None] = {}
        for s in series or [""]:
            ids.update(dict.fromkeys(self.silences.matching(self.series_labels(metric, s), now)))
        return sorted(ids)

    def api_sources(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for h in self.outages.metrics.values():
            entry = out.setdefault(h.source, {"metrics": 0, "failing": 0, "down_since": None})
            entry["metrics"] += 1
            entry["failing"] += h.failing()
        for source, src in self.outages.sources.items():
            if source in out and src.notified is not None:
                out[source]["down_since"] = datetime.fromtimestamp(src.notified, UTC).isoformat()
        return dict(sorted(out.items()))
