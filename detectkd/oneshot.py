"""One run of one metric, printed: `detectkd check` and DetectK's `dtk run`."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TextIO

from detectkd.alerting.channels import registry as channel_registry
from detectkd.alerting.channels.base import Channel
from detectkd.alerting.outage import source_key
from detectkd.alerting.outbox import Dispatcher
from detectkd.alerting.silences import Silences, load_silences, metric_labels
from detectkd.config.loader import MetricSpec
from detectkd.config.settings import Settings
from detectkd.durations import format_duration
from detectkd.errors import CollectError, StorageError
from detectkd.resources import Resources
from detectkd.runner import MetricRuntime, RunReport, error_line
from detectkd.storage.base import Store
from detectkd.storage.factory import DataStores
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


@dataclass
class MetricEnv:
    """What a one-metric command needs: the daemon's store (open), resources, the metric's data."""

    store: Store
    resources: Resources
    data: Callable[[], Awaitable[Store]] | None


@asynccontextmanager
async def metric_env(spec: MetricSpec, settings: Settings) -> AsyncIterator[MetricEnv]:
    """Opens the daemon's store (raises StorageError) and closes everything after."""
    store: Store = settings.make_store()
    resources = Resources()
    data_stores = DataStores()
    try:
        await store.open()
        yield MetricEnv(store, resources, data_stores.getter(spec.storage.enabled, spec.storage.type,
                                                             spec.storage.params))  # fmt: skip
    finally:
        await resources.close()
        await data_stores.close()
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
        async with metric_env(spec, settings) as env:
            return await _check(spec, settings, env, at, alert, out)
    except StorageError as exc:
        print(f"error     {exc}", file=out)
        return 1


async def _check(
    spec: MetricSpec, settings: Settings, env: MetricEnv, at: float | None, alert: bool, out: TextIO
) -> int:
    store = env.store
    saved = await store.load_states()
    states = {s: st for (m, s), st in saved.items() if m == spec.name}
    silences = Silences()
    silences.replace_all(load_silences(await store.silences_load())[0])
    base = metric_labels(spec.name, spec.config.tags, source_key(spec.collector))
    rt = MetricRuntime(
        spec, store, env.resources, None, states, data_store=env.data, link_template=settings.generator_url,
        silenced=silences.predicate(base),
    )  # fmt: skip
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
        return await _deliver(spec, store, env.resources, out)
    return 0


async def _deliver(spec: MetricSpec, store: Store, resources: Resources, out: TextIO) -> int:
    channels: dict[int, Channel] = {}
    for a in spec.alerters:
        ctype = channel_registry.lookup(a.type)
        if ctype is not None:
            channels[a.index] = ctype.build(a.params, resources)

    def lookup(metric: str, index: int) -> Channel | None:
        return channels.get(index) if metric == spec.name else None

    dispatcher = Dispatcher(store, lookup, only_metric=spec.name)
    await dispatcher.deliver_due()
    left = [i for i in await store.outbox_pending() if i.metric == spec.name]
    for item in left:
        print(f"alert     not delivered yet ({item.last_error}); kept in the outbox", file=out)
    if not left:
        print("alert     delivered", file=out)
    return 1 if left else 0
