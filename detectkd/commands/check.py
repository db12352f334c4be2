"""One run of one metric, printed: `detectkd check` and DetectK's `dtk run`."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from detectkd.alerting.channels.base import Channel
from detectkd.alerting.silences import Silences, load_silences
from detectkd.config.calendars import WEEKDAYS
from detectkd.config.settings import Settings
from detectkd.durations import format_duration
from detectkd.errors import CollectError, StorageError, error_line
from detectkd.resources import Resources
from detectkd.runtime.coldstart import first_start
from detectkd.runtime.collect import windows
from detectkd.runtime.outbox import Dispatcher
from detectkd.runtime.runner import MetricRuntime, RunReport
from detectkd.runtime.slot import Deps, MetricSlot, assemble
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import Store
from detectkd.storage.factory import DataStores, daemon_store
from detectkd.templating import compile_template, render
from detectkd.timegrid import Grid, fmt_local


def _num(x: float | None) -> str:
    return "NULL" if x is None else f"{x:.6g}"


def print_report(rt: MetricRuntime, report: RunReport, out: TextIO) -> None:
    spec = rt.spec
    tz = rt.tz
    print(
        f"metric    {spec.name}  ({spec.collector.type}, every {format_duration(rt.interval)}, tz {tz.key})",
        file=out,
    )
    print(
        f"periods   {fmt_local(report.start, tz)} .. {fmt_local(report.finish, tz)}",
        file=out,
    )
    rule = getattr(type(spec.collector.params), "PERIOD_RULE", None) or (
        "a row belongs to the period that holds its timestamp, [t, t + {interval}) on the interval "
        "grid; several rows in one period keep the last"
    )
    print(f"rule      {rule.format(interval=format_duration(rt.interval))}", file=out)
    for w in report.warnings:
        print(f"warning   {w}", file=out)
    print(f"collected {len(report.points)} point(s)", file=out)
    for pr in report.points:
        p = pr.point
        label = p.series or "-"
        print(f"  {fmt_local(p.period, tz)}  series={label}  value={_num(p.value)}", file=out)
        if spec.calendar is not None and (hit := spec.calendar.at(p.period)) is not None:
            how = {"alert": "alerted as usual", "exclude": "excluded: not judged, not alerted"}.get(hit.mode)
            how = how or f"judged like a {WEEKDAYS[hit.like or 0]}"
            print(f"    calendar     {hit.during} ({how})", file=out)
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


@dataclass(frozen=True)
class Options:
    at: float | None = None  # the period holding this time (None: the newest)
    alert: bool = True  # False: store nothing, send nothing
    out: TextIO = sys.stdout
    profiles: Path | None = None  # where the metric's profile came from (for hints)
    show_query: bool = False  # print the query as rendered for the period


async def check_metric(
    spec: MetricSpec,
    settings: Settings,
    at: float | None = None,
    alert: bool = True,
    out: TextIO = sys.stdout,
    profiles: Path | None = None,
    show_query: bool = False,
) -> int:
    """Returns a process exit code: 0 ran (anomalous or not), 1 failed. A failed run leaves
    nothing behind: a store it had to create is removed again."""
    opts = Options(at, alert, out, profiles, show_query)
    fresh = new_paths(settings)
    code = 1
    try:
        async with metric_env(settings) as deps:
            code = await _check(spec, deps, opts)
    except StorageError as exc:
        print(f"error     {exc}", file=out)
    finally:
        if code != 0:
            remove_paths(fresh)
    return code


def new_paths(settings: Settings) -> list[Path]:
    """What opening an SQLite store would create: the file (with its journal files) and the
    directories above it that do not exist yet, deepest first."""
    if settings.storage.type != "sqlite":
        return []
    path = settings.store_path
    if path.exists():
        return []
    out = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    parent = path.parent
    while not parent.exists():
        out.append(parent)
        parent = parent.parent
    return out


def remove_paths(paths: list[Path]) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.rmdir() if p.is_dir() else p.unlink()


def source_hint(spec: MetricSpec, profiles: Path | None) -> str | None:
    """Where a failing connection came from: its profile, and the variables it reads."""
    name = spec.collector.profile
    if name is None or profiles is None:
        return None
    try:
        raw = YAML(typ="safe").load(profiles.read_text()) or {}
        entry = raw.get("profiles", {}).get(name, {})
    except (OSError, YAMLError, AttributeError):
        return None
    names = sorted(set(re.findall(r"\$\{(\w+)", json.dumps(entry))))
    via = f"; it reads {', '.join(names)}" if names else ""
    return f"the connection is profile {name!r} in {profiles}{via}"


async def _check(spec: MetricSpec, deps: Deps, opts: Options) -> int:
    store = deps.store
    saved = await store.load_states()
    states = {s: st for (m, s), st in saved.items() if m == spec.name}
    deps.silences = Silences()
    deps.silences.replace_all(load_silences(await store.silences_load())[0])
    slot = assemble(spec, deps, states)
    try:
        return await _check_slot(slot, store, opts)
    finally:
        await slot.stop()


async def _check_slot(slot: MetricSlot, store: Store, opts: Options) -> int:
    rt, out = slot.runtime, opts.out
    if opts.at is not None:
        start = rt.grid.floor(opts.at)
        finish = rt.grid.next(start)
    else:
        finish = rt.finish_for(time.time())
        start = rt.grid.prev(finish)
    try:
        begin = await warmup_begin(rt, store, start)
        if opts.show_query:
            for text in rendered_queries(rt.spec, rt.grid, begin, finish):
                print("query     " + text.strip().replace("\n", "\n          "), file=out)
        report = await rt.check(begin, finish, notify=opts.alert, commit=opts.alert)
        if begin < start:  # judged with the history its detectors read, as the daemon would
            print(
                f"history   {len(rt.grid.periods(begin, start))} earlier period(s) collected first "
                "(the detectors' window: nothing stored yet)",
                file=out,
            )
            report.points = [pr for pr in report.points if pr.point.period >= start]
            report.start = start
    except (CollectError, StorageError, ValueError) as exc:
        print(f"error     {error_line(exc)}", file=out)
        if isinstance(exc, CollectError) and (hint := source_hint(rt.spec, opts.profiles)):
            print(f"hint      {hint}", file=out)
        return 1
    print_report(rt, report, out)
    if opts.alert and report.alerts:
        return await _deliver(slot, store, out)
    return 0


async def warmup_begin(rt: MetricRuntime, store: Store, start: int) -> int:
    """Where a check of a metric with nothing stored starts: the window its detectors read,
    as on the daemon's first start (one query when the query spans periods)."""
    if rt.spec.config.storage.enabled and await store.watermark(rt.name) is not None:
        return start
    first = first_start(rt.spec, rt.grid, rt.span - rt.grid.step, start)
    if first is None or first[0] >= start:
        return start
    few = len(rt.grid.periods(first[0], start)) <= rt.spec.config.schedule.max_catch_up
    return first[0] if rt.spec.collector.multi_period or few else start


def rendered_queries(spec: MetricSpec, grid: Grid, start: int, finish: int) -> list[str]:
    """The collector's query (or URL) as the database will receive it for [start, finish)."""
    params = spec.collector.params
    text = getattr(params, "query", None) or getattr(params, "url", None)
    if not isinstance(text, str):
        return []
    template = compile_template(text)
    return [render(template, w.template_vars()) for w in windows(spec, grid, start, finish)]


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
