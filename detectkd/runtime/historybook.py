"""The history loader's jobs as the store and the operator see them (`JobBook`): read at
start, each saved after every batch (a warm-up's never: it is redone after a crash), its
progress a gauge, a failed batch's error shown and its retry backed off. `runtime.history`
decides what to load and when; this keeps the record of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import structlog

from detectkd.config.settings import HistorySettings
from detectkd.errors import error_line
from detectkd.runtime.historyjob import Job, iso
from detectkd.storage.base import StateStore
from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd.history")
MAX_RETRY_S = 600.0


class JobBook:
    def __init__(self, store: StateStore, settings: HistorySettings, telemetry: Telemetry | None) -> None:
        self.store = store
        self.settings = settings
        self.telemetry = telemetry
        self.jobs: dict[str, Job] = {}
        self._stored: set[str] = set()  # metrics with a job in the store
        self._save_lock = asyncio.Lock()

    async def open(self) -> None:
        """Read the jobs an earlier process left unfinished."""
        for metric, data in (await self.store.history_load()).items():
            try:
                self.jobs[metric] = Job.from_json(metric, data)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("history job unreadable, dropped", metric=metric, error=str(exc))
                await self.store.history_save(metric, None)
                continue
            self._stored.add(metric)
            self.gauge(self.jobs[metric])

    async def record(self, metric: str, start: int, until: int, warm: bool, many: bool = False) -> None:
        """A new job, or the metric's job extended up to `until`; stored. `many`: the metric
        has `series_columns` (its warm-up's series are counted, `warmed`)."""
        job = self.jobs.get(metric)
        if job is None:
            job = self.jobs[metric] = Job(metric, start, until, until - start, warm=warm, many=many)
        elif until > job.until:
            job.total += until - job.until
            job.until = until
        await self.save(job)
        self.gauge(job)

    async def save(self, job: Job) -> None:
        if job.warm and job.metric not in self._stored:
            return  # a warm-up: redone after a crash (its live runs committed nothing)
        async with self._save_lock:  # serialised inside the lock: the newest state is written last
            await self.store.history_save(job.metric, None if job.done else job.to_json())
            (self._stored.discard if job.done else self._stored.add)(job.metric)

    def succeeded(self, job: Job, series: Iterable[str] = ()) -> None:
        """A batch of the job was stored; `series`: a warm-up's, those it stored."""
        job.error, job.failures, job.retry_at = None, 0, None
        if job.warm and job.many:
            job.series.update(series)
        self.gauge(job)

    def failed(self, job: Job, exc: Exception, timeout: float) -> float:
        """A batch of the job failed: its error kept and logged; seconds until it is retried."""
        timed_out = isinstance(exc, TimeoutError) and timeout > 0
        line = f"batch exceeded history.batch_timeout ({timeout:g}s)" if timed_out else error_line(exc)
        job.failures += 1
        job.error = line
        retry = min(MAX_RETRY_S, self.settings.retry_after.total_seconds() * 2.0 ** (job.failures - 1))
        job.retry_at = time.time() + retry
        log.warning(
            "history batch failed",
            metric=job.metric,
            error=line,
            retry_in_s=retry,
            loaded_until=iso(job.start),
        )
        if self.telemetry is not None:
            self.telemetry.history_errors.labels(job.metric).inc()
            if job.warm:  # its live runs judged nothing yet (they wait for it); the API says why
                self.telemetry.metric_judging.labels(job.metric).set(0)
        return retry

    def gauge(self, job: Job) -> None:
        """Its progress; a warm-up's live runs wait, judging nothing: `detectk_metric_judging`
        0 and, of a many-series metric, `detectk_metric_series_not_judging` the series loaded
        so far (in place of what an earlier runtime of the metric said)."""
        if self.telemetry is not None:
            self.telemetry.history_progress.labels(job.metric).set(job.progress)
            if job.warm and not job.failures:  # from the metric's start on, before its first live run
                self.telemetry.metric_judging.labels(job.metric).set(0)
                if job.many:
                    self.telemetry.series_not_judging.labels(job.metric).set(len(job.series))

    def api(self, metric: str, step: float = 0) -> dict[str, Any] | None:
        job = self.jobs.get(metric)
        return job.api(step) if job is not None else None
