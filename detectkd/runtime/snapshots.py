"""The daemon's side of the memory snapshot (`runtime.snapshot`): read at start and offered
to each metric, written in the background every `snapshot_interval` and once more at
SIGTERM, and the start's outcome logged (how many metrics resumed, how many stored points
were caught up, how many were rebuilt from the store). Until every metric took its part,
the heap's free pages are given back every `REPORT_EVERY_S` (`heap.trim`: the parts were
read in a worker thread's malloc arena, which the loop's allocations do not reuse).

A background write never holds the event loop long: metrics are copied in slices of at
most `SLICE_S` of the loop's time (a metric whose run is in flight is copied after it, its
lock awaited), each slice's copies written by a worker thread at most
`snapshot_write_mib_s` and fdatasynced every 8 MiB, then the file is renamed over the
previous one. A crash in the middle leaves the previous snapshot whole. Each metric's entry
names the stored watermark its memory was in step with when it was copied, so the start
after a crash catches up from there (`runtime.catchup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from detectkd.config.settings import Settings
from detectkd.runtime import heap, snapshot
from detectkd.runtime.memory import Saved

if TYPE_CHECKING:
    from detectkd.runtime.runner import MetricRuntime
    from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd")
SLICE_S = 0.005  # the loop's time one slice of copying may take (then it yields)
BUSY_WAIT_S = 10.0  # a metric whose run is in flight is waited for this long, then left out
REPORT_EVERY_S = 2.0  # how often the start's outcome is looked at until every metric resumed
REPORT_WITHIN_S = 600.0  # ... reported by then even if some (a daily metric) have not run yet


class Snapshots:
    def __init__(
        self,
        settings: Settings,
        runtimes: Callable[[], list[MetricRuntime]],
        telemetry: Telemetry | None = None,
    ) -> None:
        """`telemetry`: the last write's time, size and duration, and the failures, on /metrics."""
        self.path = settings.data_dir / snapshot.FILE
        self.enabled = settings.restart_snapshot
        every = settings.snapshot_interval
        self.every = every.total_seconds() if every is not None and self.enabled else None
        self.rate = settings.snapshot_write_mib_s * 2**20  # bytes a second
        self.runtimes = runtimes
        self.parts: dict[str, Saved] = {}  # the previous process's, until the start installed them
        self.count = 0  # metrics in the file read at start
        self.offered: list[MetricRuntime] = []  # metrics that took a part, until reported
        self.started = time.monotonic()
        self.last: dict[str, float] = {}  # the last background write's figures
        self._fingerprints: weakref.WeakKeyDictionary[MetricRuntime, str] = weakref.WeakKeyDictionary()
        self.telemetry = telemetry

    # -- the start -----------------------------------------------------------------------

    async def load(self) -> None:
        if self.enabled:
            self.parts = await asyncio.to_thread(snapshot.load, self.path)
            self.count = len(self.parts)
            with contextlib.suppress(OSError):  # a usable file stays: how old it is, from the start on
                st = self.path.stat()
                self._written(st.st_mtime, st.st_size, None)

    def offer(self, rt: MetricRuntime) -> None:
        """The metric's part, if the file has one for its config (a start installs it)."""
        rt.memory.saved = snapshot.take(self.parts, rt) if self.parts else None
        if rt.memory.saved is not None:
            self.offered.append(rt)

    def taken(self) -> None:
        """After the start installed every metric: log how many took their part."""
        if self.count:
            log.info("restart snapshot taken", metrics=len(self.offered), offered=self.count)
        self.parts = {}

    def report(self, final: bool = False) -> bool:
        """Once every metric that took a part has run (or `final`): log how many resumed from
        it, the stored points they caught up, and how many read the store instead. True when
        there is nothing left to report."""
        if not self.offered:
            return True
        pending = sum(rt.memory.saved is not None and not rt.memory.loaded for rt in self.offered)
        if pending and not final:
            return False
        for rt in self.offered:  # (`final`) read now: the file a newer one replaced is closed
            snapshot.unadopted(rt)
        resumed = [rt.memory.caught_up for rt in self.offered if rt.memory.caught_up is not None]
        rebuilt = len(self.offered) - len(resumed) - pending
        log.info(
            "restart snapshot resumed",
            metrics=len(resumed),
            caught_up_points=sum(resumed),
            caught_up_metrics=sum(n > 0 for n in resumed),
            rebuilt=rebuilt,
            pending=pending,
            seconds=round(time.monotonic() - self.started, 1),
        )
        self.offered = []
        return True

    # -- writing -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: the start's outcome once known, and a snapshot every `every`."""
        due = time.monotonic() + (self.every or 0.0)
        reported = False
        while not stop.is_set():
            wait = due - time.monotonic() if self.every is not None else None
            if not reported:
                wait = REPORT_EVERY_S if wait is None else min(wait, REPORT_EVERY_S)
            if await _stopped(stop, wait):
                break
            if not reported:
                reported = self.report(final=time.monotonic() - self.started > REPORT_WITHIN_S)
                if self.count:  # the parts metrics adopted since: their pages back (`heap.trim`)
                    await asyncio.to_thread(heap.trim)
            if self.every is not None and time.monotonic() >= due:
                await self.write(stop)
                due = time.monotonic() + self.every

    async def final(self) -> None:
        """At a graceful stop, with no run in flight: every metric, unpaced (`snapshot.write`)."""
        if self.enabled:
            self.report(final=True)
            began = time.monotonic()
            size = await asyncio.to_thread(snapshot.write, self.path, self.runtimes())
            self._written(time.time(), size, time.monotonic() - began)

    async def write(self, stop: asyncio.Event | None = None) -> dict[str, float] | None:
        """One background snapshot; its figures (also logged), None when it was not written."""
        began = time.monotonic()
        try:
            out = await asyncio.to_thread(snapshot.SnapshotFile, self.path)
        except OSError as exc:
            log.warning("memory snapshot not written", path=str(self.path), error=str(exc))
            self._written(time.time(), None, None)
            return None
        stall = cpu = 0.0  # the longest slice on the loop: wall time, and the loop thread's CPU
        busy, left_out = [], 0
        try:
            pending = list(self.runtimes())
            while pending:
                if stop is not None and stop.is_set():
                    raise _Stopped
                t0, c0, batch = time.perf_counter(), time.thread_time(), []
                while pending and time.perf_counter() - t0 < SLICE_S:
                    rt = pending.pop()
                    if rt.lock.locked():
                        busy.append(rt)  # mid-run: memory is changing
                    elif (part := self.copied(rt)) is not None:
                        batch.append((rt.name, part))
                stall, cpu = max(stall, time.perf_counter() - t0), max(cpu, time.thread_time() - c0)
                await self._put(out, batch, stop)
            for rt in busy:
                if stop is not None and stop.is_set():
                    raise _Stopped
                if not await _locked(rt.lock, stop, BUSY_WAIT_S):
                    left_out += 1
                    continue
                try:
                    part = self.copied(rt)
                finally:
                    rt.lock.release()
                await self._put(out, [(rt.name, part)] if part is not None else [], stop)
            metrics = len(out.metrics)
            size = await asyncio.to_thread(out.finish)
        except _Stopped:
            await asyncio.to_thread(out.abort)
            return None
        except Exception as exc:  # never the end of the daemon: the next interval tries again
            await asyncio.to_thread(out.abort)
            error = str(exc) or type(exc).__name__
            log.warning("memory snapshot not written", path=str(self.path), error=error)
            self._written(time.time(), None, None)
            return None
        self.last = {
            "metrics": metrics,
            "mib": round(size / 2**20, 1),
            "left_out": left_out,
            "seconds": round(time.monotonic() - began, 2),
            "stall_ms": round(stall * 1000, 1),
            "stall_cpu_ms": round(cpu * 1000, 1),
            "waited": len(busy),
        }
        log.info("memory snapshot written", **self.last)
        self._written(time.time(), size, time.monotonic() - began)
        return self.last

    def _written(self, at: float, size: int | None, seconds: float | None) -> None:
        """On /metrics: a snapshot written at `at` (`size` None: a failed write, counted)."""
        if (t := self.telemetry) is None:
            return
        if size is None:
            t.snapshot_failures.inc()
            return
        t.snapshot_ts.set(at)
        t.snapshot_bytes.set(size)
        if seconds is not None:
            t.snapshot_seconds.set(seconds)

    def copied(self, rt: MetricRuntime) -> Saved | None:
        """The metric's memory where it is in step with the store, its arrays copied (runs go
        on changing memory while a worker thread writes); a part taken at start that no run
        adopted yet is passed on as it is (nothing changes it)."""
        watermark = rt.settled
        if watermark is None:
            return snapshot.unadopted(rt)
        fp = self._fingerprints.get(rt)
        if fp is None:
            fp = self._fingerprints[rt] = snapshot.fingerprint(rt)
        part = rt.memory.save(fp, watermark, rt.fresh.unread())
        part.windows = {
            s: (t.copy(), v.copy(), {c: x.copy() for c, x in f.items()})
            for s, (t, v, f) in part.windows.items()
        }
        part.states = {d: {s: (a.copy(), sc) for s, (a, sc) in per.items()} for d, per in part.states.items()}
        return part

    async def _put(
        self, out: snapshot.SnapshotFile, batch: list[tuple[str, Saved]], stop: asyncio.Event | None
    ) -> None:
        """Write a slice from a worker thread, then wait as long as the rate bound asks."""
        began, size = time.monotonic(), out.size
        if batch:
            await asyncio.to_thread(_add, out, batch)
        rest = (out.size - size) / self.rate - (time.monotonic() - began)
        if rest > 0 and await _stopped(stop, rest):
            raise _Stopped


class _Stopped(Exception):
    """The daemon stops: the write in progress is abandoned (SIGTERM writes its own)."""


def _add(out: snapshot.SnapshotFile, batch: list[tuple[str, Saved]]) -> None:
    for name, part in batch:
        out.add(name, part)


async def _locked(lock: asyncio.Lock, stop: asyncio.Event | None, seconds: float) -> bool:
    """`lock` acquired within `seconds` (True: the caller releases it), False past them;
    `_Stopped` as soon as `stop` is set, not after the wait (SIGTERM waits for no run here)."""
    acquire = asyncio.ensure_future(lock.acquire())
    waits: set[asyncio.Future[Any]] = {acquire}
    if stop is not None:
        waits.add(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()  # (a done acquire stays acquired)
        await asyncio.wait(waits)
    held = not acquire.cancelled()
    if stop is not None and stop.is_set():
        if held:
            lock.release()
        raise _Stopped
    return held


async def _stopped(stop: asyncio.Event | None, seconds: float | None) -> bool:
    """Wait `seconds` (None: for ever) or until `stop`; True if stopped."""
    if stop is None:
        await asyncio.sleep(max(0.0, seconds or 0.0))
        return False
    try:
        await asyncio.wait_for(stop.wait(), None if seconds is None else max(0.0, seconds))
    except TimeoutError:
        return False
    return True
