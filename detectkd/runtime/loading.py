"""A points-only load of a metric's history: a warm-up's batch, a fill's (`runtime.history`).

Such a load collects periods and stores their points; it judges nothing. So it needs the
metric's spec and grid, a collector of its own (the loader's wrap: paced, halting) and where
the points go, not a whole runtime: building one for each load (detectors, judge context,
alert and status bookkeeping, its own `completeness:` gate) was about 0.1 ms of a warm-up's
CPU, 5 % of it at 10,000 fresh `mad` metrics, and more for `auto`, whose fill builds one for
each of its batches (issue 28). `PointsLoad` is that much; the span it fills comes from the
metric's live runtime, whose detectors are the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from detectkd.collectors.base import Collector
from detectkd.collectors.points import Point
from detectkd.runtime.coldstart import start_time
from detectkd.runtime.collect import ManyPeriods, collect
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import DataStore, RunRecord, StateStore
from detectkd.timegrid import Grid


class Loads(Protocol):
    """What `store_points` reads of a load: a `PointsLoad`, or a whole `MetricRuntime`."""

    name: str
    spec: MetricSpec
    grid: Grid
    collector: Collector
    many: ManyPeriods

    async def data(self) -> DataStore: ...


@dataclass
class PointsLoad:
    name: str
    spec: MetricSpec
    grid: Grid
    collector: Collector  # its own, wrapped; closed by `stop`
    span: int  # the live runtime's: the detectors' window (`MetricRuntime.span`)
    judge_span: int  # and what they judge from (`MetricRuntime.judge_span`)
    where: Callable[[], Awaitable[DataStore]]  # where the metric's points live
    many: ManyPeriods = field(init=False)  # probed once per load, as a runtime's

    def __post_init__(self) -> None:
        self.many = ManyPeriods(self.spec)

    async def data(self) -> DataStore:
        return await self.where()

    def start_time(self) -> int | None:
        return start_time(self.spec, self.grid.tz)

    async def stop(self) -> None:
        await self.collector.close()


class Gate:
    """A slot of a semaphore held while a load asks its source, released once it has asked
    (`async with`: taken again for its next batch), and by `release` at its end."""

    def __init__(self, sem: asyncio.Semaphore) -> None:
        self.sem = sem
        self.held = False

    async def acquire(self) -> None:
        if not self.held:
            await self.sem.acquire()
            self.held = True

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self.held:
            self.held = False
            self.sem.release()


async def store_points(
    rt: Loads,
    start: int,
    finish: int,
    done: tuple[StateStore, int] | None = None,
    gate: Gate | None = None,
) -> list[Point]:
    """A points-only batch: the points of [start, finish) stored, not judged. What the live
    runtime needs is its window, read from the store (`auto` rebuilds its state from it);
    judging each period of it would cost a warm-up most of its CPU for marks on a chart.
    `done`: the job's last batch, (the state store, the watermark to commit there: see
    `judged_until`), in the same transaction as the points when they are kept
    in that store (one commit instead of two; points before the watermark, in one
    transaction on SQLite and PostgreSQL, so a crash never leaves the watermark alone). `gate`: held
    while the source is asked, not while the points are stored."""
    async with gate if gate is not None else nullcontext():
        conv = await collect(rt.collector, rt.spec, rt.grid, start, finish, rt.many)
    points = conv.points if rt.spec.storage.enabled else []
    data = await rt.data() if points else None
    same: object = data  # (the data store is the state store: the default, SQLite or not)
    if done is not None and (data is None or same is done[0]):
        state, last = done
        await state.commit(RunRecord(rt.name, points=points, watermark=last, save_points=bool(points)))
        return conv.points
    if data is not None:
        await data.commit(RunRecord(rt.name, points=points, save_points=True))
    if done is not None:  # the points in a store of their own: theirs first, then the watermark
        await done[0].commit(RunRecord(rt.name, watermark=done[1], save_points=False))
    return conv.points


async def judged_until(store: StateStore, metric: str, last: int) -> None:
    """A history job judged up to `last`: the watermark says so before the job is deleted, so
    a metric whose live run has not committed yet (it runs on its own schedule) catches up
    from there instead of recording the job again. The watermark only moves forward."""
    await store.commit(RunRecord(metric, watermark=last, save_points=False))
