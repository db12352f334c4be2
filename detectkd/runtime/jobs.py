"""Running a metric on its schedule (`Runs`, held by the `MetricSet`): one run under the
concurrency limit and the run timeout, failures counted and judged, outages observed; HA
standbys skip."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from detectkd.errors import error_line
from detectkd.runtime.offloop import budget

if TYPE_CHECKING:
    from detectkd.alerting.outage import Outages
    from detectkd.config.settings import Settings
    from detectkd.runtime.leader import Leadership
    from detectkd.runtime.slot import MetricSlot
    from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd")


class Runs:
    def __init__(
        self,
        slots: Mapping[str, MetricSlot],
        settings: Settings,
        telemetry: Telemetry,
        outages: Outages,
        leadership: Leadership | None,
        health: Callable[[], Awaitable[None]],
    ) -> None:
        """`slots`: the running metrics by name (the metric set's, read at each run);
        `health`: checks ERROR and SOURCE DOWN, called after a run that owes one."""
        self.slots = slots
        self.settings = settings
        self.telemetry = telemetry
        self.outages = outages
        self.leadership = leadership
        self.check_health = health
        self.inflight: set[asyncio.Task[Any]] = set()
        self._sem = asyncio.Semaphore(settings.max_concurrent_checks)
        self.clock: Callable[[], float] = time.time  # when a run without `at` is (tests pin it)

    def cancel(self, name: str) -> None:
        """Cancel the metric's run in flight (it is being stopped)."""
        for task in list(self.inflight):
            if task.get_name() == f"run:{name}":
                task.cancel()

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for the runs in flight, then cancel what is left."""
        tasks = set(self.inflight)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
            log.warning("runs cancelled at shutdown", count=len(pending))

    async def job(self, name: str, scheduled: bool = True) -> None:
        """The scheduler's job of a metric (and an extra run, `scheduled` false)."""
        task = asyncio.current_task()
        assert task is not None
        task.set_name(f"run:{name}")
        self.inflight.add(task)
        try:
            await self.run_metric(name, scheduled=scheduled)
        finally:
            self.inflight.discard(task)

    def judge_warmed(self, name: str) -> asyncio.Task[None] | None:
        """The warm-up history of a metric not judging yet (`start_time` not set) was
        loaded: judge its newest due period now rather than at the metric's next slot, up
        to an interval later (issue 28)."""
        slot = self.slots.get(name)
        if slot is None or slot.runtime.start_time() is not None or not self.may_run():
            return None
        if slot.runtime.status.judging is not True:
            return asyncio.get_running_loop().create_task(self.job(name, scheduled=False))
        return None

    def may_run(self) -> bool:
        """False on a standby of an HA pair: it runs nothing (checks, history loading)."""
        return self.leadership is None or self.leadership.leader

    async def run_metric(self, name: str, at: float | None = None, scheduled: bool = True) -> None:
        """Run the metric's newest due period; `scheduled` false: an extra run, not on the
        metric's slot, whose delay is no scheduler lag."""
        slot = self.slots.get(name)
        if slot is None or not self.may_run():
            return
        rt, trigger = slot.runtime, slot.trigger
        now = self.clock() if at is None else at
        due = trigger.latest_at_or_before(now)
        if scheduled:
            lag = max(0.0, now - due)
            self.telemetry.lag.observe(lag)
            self.telemetry.recent_lag.observe(lag, time.time())
        timeout = (self.settings.run_timeout or rt.interval).total_seconds()
        finish = rt.finish_for(due)
        ok = False
        async with self._sem:
            started = time.monotonic()
            try:
                async with budget(timeout):  # the source and the store; not the judge (`offloop`)
                    await slot.late.run(finish, now, lambda: self.job(name, scheduled=False))
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
