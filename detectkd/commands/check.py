"""One run of one metric, printed: `detectkd check` and DetectK's `dtk run`."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

from detectkd.alerting.channels.base import Channel
from detectkd.alerting.outbox import Dispatcher
from detectkd.alerting.silences import Silences, load_silences
from detectkd.config.settings import Settings
from detectkd.durations import format_duration
from detectkd.errors import CollectError, StorageError, error_line
from detectkd.resources import Resources
from detectkd.runtime.runner import MetricRuntime, RunReport
from detectkd.runtime.slot import Deps, MetricSlot, assemble
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import Store
from detectkd.storage.factory import DataStores, daemon_store
from detectkd.timegrid import fmt_local


def _num(x: float | None) -> str:
    return "NULL" if x is None else f"{x:.6g}"


def print_report(rt: MetricRuntime, report: RunReport, out: TextIO) -> None:
    spec = rt.spec
    tz = rt.tz
    print(
        f"metric    {spec.name}  ({spec.collector.type}, every {rt.interval}, tz {tz.key})",
        file=out,
    )
    print(
        f"periods   {fmt_local(report.start, tz)} .. {fmt_local(report.finish, tz)}",
        file=out,
    )
    print(
        f"rule      a row belongs to the period that holds its timestamp, "
        f"[t, t + {format_duration(rt.interval)}) on the interval grid; several rows in one period "
        "keep the last",
        file=out,
    )
    for w in report.warnings:
        print(f"warning   {w}", file=out)
    print(f"collected {len(report.points)} point(s)", file=out)
    for pr in report.points:
        p = pr.point
        label = p.series or "-"
        print(f"  {fmt_local(p.period, tz)}  series={label}  value={_num(p.value)}", file=out)
        for r in pr.results:
            if r.skipped:
                print(f"    {r.detector:<12} skipped: {r.skipped}", file=out)
                continue
            verdict = f"ANOMALY {r.direction or ''}".strip() if r.anomaly else "ok"
            print(
                f"    {r.detector:<12} expected={_num(r.expected)} "
                f"range=[{_num(r.lower)}, {_num(r.upper)}] score={r.score:.3f} {verdict}",
                file=out,
            )
        cond = spec.conditions
        decision = "anomalous" if pr.verdict.anomalous else "normal"
        if pr.verdict.missing:
            decision = f"no data ({cond.on_no_data})"
        notes = ", ".join(n.status if n.kind == "anomaly" else f"{n.kind} {n.status}" for n in pr.notices)
        print(
            f"    decision: {decision}; streak {pr.state.streak}/{cond.required_streak(rt.interval)}; "
            f"state {pr.state.status.value.upper()}; notification: {notes or 'none'}",
            file=out,
        )


@asynccontextmanager
async def metric_env(settings: Settings) -> AsyncIterator[Deps]:
    """What a one-metric command needs, as the daemon would wire it: its store (open; raises
    StorageError), resources and data stores. Everything is closed after."""
    store: Store = daemon_store(settings)
    deps = Deps(store, Resources(), DataStores(), generator_url=settings.generator_url)
    try:
        await store.open()
        yield deps
    finally:
        await deps.resources.close()
        if deps.data_stores is not None:
            await deps.data_stores.close()
        await store.close()


async def check_metric(
    spec: MetricSpec,
    settings: Settings,
    at: float | None = None,
    alert: bool = True,
    out: TextIO = sys.stdout,
) -> int:
    """Returns a process exit code: 0 ran (anomalous or not), 1 failed."""
    try:
        async with metric_env(settings) as deps:
            return await _check(spec, deps, at, alert, out)
    except StorageError as exc:
        print(f"error     {exc}", file=out)
        return 1


async def _check(spec: MetricSpec, deps: Deps, at: float | None, alert: bool, out: TextIO) -> int:
    store = deps.store
    saved = await store.load_states()
    states = {s: st for (m, s), st in saved.items() if m == spec.name}
    deps.silences = Silences()
    deps.silences.replace_all(load_silences(await store.silences_load())[0])
    slot = assemble(spec, deps, states)
    try:
        return await _check_slot(slot, store, at, alert, out)
    finally:
        await slot.stop()


async def _check_slot(slot: MetricSlot, store: Store, at: float | None, alert: bool, out: TextIO) -> int:
    rt = slot.runtime
    if at is not None:
        start = rt.grid.floor(at)
        finish = rt.grid.next(start)
    else:
        finish = rt.finish_for(time.time())
        start = rt.grid.prev(finish)
    try:
        report = await rt.check(start, finish, notify=alert, commit=alert)
    except (CollectError, StorageError, ValueError) as exc:
        print(f"error     {error_line(exc)}", file=out)
        return 1
    print_report(rt, report, out)
    if alert and report.alerts:
        return await _deliver(slot, store, out)
    return 0


async def _deliver(slot: MetricSlot, store: Store, out: TextIO) -> int:
    spec = slot.spec

    def lookup(metric: str, channel: str) -> Channel | None:
        return slot.channels.get(channel) if metric == spec.name else None

    dispatcher = Dispatcher(store, lookup, only_metric=spec.name)
    await dispatcher.deliver_due()
    left = [i for i in await store.outbox_pending() if i.metric == spec.name]
    for item in left:
        print(f"alert     not delivered yet ({item.last_error}); kept in the outbox", file=out)
    if not left:
        print("alert     delivered", file=out)
    return 1 if left else 0
