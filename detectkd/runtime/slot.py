"""One metric, one object: `assemble(spec, deps) -> MetricSlot`.

The daemon, `detectkd check`, `backtest` and `load-history` all wire a
metric here, so a metric is built the same way wherever it runs. A slot
owns the metric's runtime (collector, detectors, alert state, windows), its
schedule, its channels and its silence labels; `stop()` releases all of it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

import structlog

from detectkd.alerting.channels import registry as channel_registry
from detectkd.alerting.channels.channelset import Bound, ChannelSet
from detectkd.alerting.silences import Labels, Silences, metric_labels
from detectkd.alerting.state import SeriesState
from detectkd.collectors import registry as collector_registry
from detectkd.collectors.base import Collector
from detectkd.errors import StorageError
from detectkd.resources import Resources
from detectkd.runtime.calendar import build_detectors
from detectkd.runtime.closing import all_or_nothing
from detectkd.runtime.lateness import Lateness
from detectkd.runtime.loading import PointsLoad
from detectkd.runtime.parts import LIVE, LOADER, Links, Parts, RunMode
from detectkd.runtime.runner import MetricRuntime
from detectkd.runtime.scheduler import GridTrigger, stable_offset
from detectkd.runtime.unjudged import resolve_removed
from detectkd.specs.loader import MetricSpec, source_key
from detectkd.storage.base import DataStore, Store
from detectkd.storage.factory import DataStores
from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd")


@dataclass
class Deps:
    """What every slot of one process shares."""

    store: Store  # alert state, watermarks, outbox, silences (and data, unless a metric names its own)
    resources: Resources
    data_stores: DataStores | None = None  # a metric's own `storage:` backend, opened once per target
    telemetry: Telemetry | None = None
    wake: Callable[[], None] | None = None  # an outbox row was committed
    generator_url: str | None = None
    silences: Silences | None = None
    mode: RunMode = LIVE  # how runs commit (a backtest: `REPLAY`, `load-history`: no alert state)
    channels: bool = True  # build the metric's channels (a backtest sends nothing)


Wrap = Callable[[str, Collector], Collector]  # (source key, collector): e.g. paced (`runtime.pace`)


@dataclass
class MetricSlot:
    spec: MetricSpec
    runtime: MetricRuntime
    trigger: GridTrigger
    channels: ChannelSet
    labels: Labels  # metric, tag and source: what silences match
    source: str  # the SOURCE DOWN grouping key
    late: Lateness  # `completeness:`: the live run's gate and re-judging of late rows

    @property
    def name(self) -> str:
        return self.spec.name

    async def resolve_alerts(self, store: Store) -> bool:
        """Removed by reload: commit a RESOLVED of every active alert (`resolve_removed`).
        True when there were any (the slot's channels must stay reachable to send them)."""
        record = resolve_removed(self.runtime.states, self.runtime.ctx, int(time.time()))
        if not record.outbox:
            return False
        try:
            await store.commit(record)
        except StorageError as exc:
            log.warning("a removed metric's alerts were not resolved", metric=self.name, error=str(exc))
            return False
        log.info("removed metric's alerts resolved", metric=self.name, alerts=len(record.outbox))
        return True

    async def stop(self) -> None:
        """Release the collector's connections. The slot is not used afterwards."""
        await self.late.close()
        await self.runtime.close()


def assemble(
    spec: MetricSpec, deps: Deps, states: Mapping[str, SeriesState] | None = None, wrap: Wrap | None = None
) -> MetricSlot:
    """Build a metric's slot: its collector (`wrap`ped, when given) and detectors, handed to
    its runtime. Raises whatever a plug-in raises when it cannot be built; then nothing built
    is left open (the collector, or the runtime holding it, is closed in the background)."""
    source = source_key(spec.collector)
    labels = metric_labels(spec.name, spec.config.tags, source)
    # The parts that hold nothing first: their failure leaves nothing to close.
    detectors = build_detectors(spec, step(spec))
    channels = build_channels(spec, deps.resources) if deps.channels else ChannelSet()
    silenced = deps.silences.predicate(labels) if deps.silences is not None else None
    data = data_getter(spec, deps)
    collector = build_collector(spec, deps.resources)
    with all_or_nothing(spec.name) as built:
        built.append(collector.close)
        parts = Parts(wrap(source, collector) if wrap is not None else collector, detectors)
        links = Links(
            deps.store, deps.resources, deps.telemetry, deps.wake, data, deps.generator_url, silenced
        )
        runtime = MetricRuntime(spec, parts, links, dict(states or {}), deps.mode)
        built[-1] = runtime.close  # the collector, and the explain query's
        sched = spec.config.schedule
        trigger = GridTrigger(runtime.grid, sched.delay, stable_offset(spec.name, sched.interval))
        late = Lateness(runtime, deps.resources)
    return MetricSlot(spec, runtime, trigger, channels, labels, source, late)


def assemble_loader(spec: MetricSpec, deps: Deps, wrap: Wrap | None = None) -> MetricSlot:
    """A slot that loads the metric's history beside its live slot: its own collector and
    windows, no channels, no telemetry, and it writes neither alert state nor watermark."""
    loader = replace(deps, telemetry=None, wake=None, silences=None, channels=False, mode=LOADER)
    return assemble(spec, loader, wrap=wrap)


def assemble_points(live: MetricSlot, deps: Deps, wrap: Wrap | None = None) -> PointsLoad:
    """What a points-only load of the metric's history needs (a warm-up, a fill batch): its
    own collector (`wrap`ped, when given), the live runtime's grid and spans, and where its
    points go (`runtime.loading`); no runtime of its own."""
    spec, rt = live.spec, live.runtime
    collector = build_collector(spec, deps.resources)
    getter = data_getter(spec, deps)

    async def where() -> DataStore:
        return await getter() if getter is not None else deps.store

    own = wrap(live.source, collector) if wrap is not None else collector
    return PointsLoad(spec.name, spec, rt.grid, own, rt.span, rt.judge_span, where)


def build_collector(spec: MetricSpec, resources: Resources) -> Collector:
    """The metric's collector: a result above `collector.max_rows` is refused while read."""
    c = spec.collector
    kind = collector_registry.lookup(c.type)
    assert kind is not None  # validated at load
    p = c.points
    return kind.build(c.params, resources, p.timestamp_column, p.value_column, spec.config.collector.max_rows)


def step(spec: MetricSpec) -> int:
    """The metric's period in seconds (`timegrid.Grid.step`)."""
    return int(spec.config.schedule.interval.total_seconds())


def data_getter(spec: MetricSpec, deps: Deps) -> Callable[[], Awaitable[DataStore]] | None:
    """Where the metric's points and detections live, when not in `deps.store`."""
    s = spec.storage
    return deps.data_stores.getter(s.enabled, s.type, s.params) if deps.data_stores is not None else None


async def data_store(spec: MetricSpec, deps: Deps) -> DataStore:
    getter = data_getter(spec, deps)
    return await getter() if getter is not None else deps.store


def build_channels(spec: MetricSpec, resources: Resources) -> ChannelSet:
    bound = []
    for a in spec.alerters:
        ctype = channel_registry.lookup(a.type)
        if ctype is not None:
            bound.append(Bound(a.id, a.type, ctype.build(a.params, resources)))
    return ChannelSet(bound)
