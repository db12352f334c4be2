"""What a `MetricRuntime` is given: `runtime.slot.assemble` builds its plug-ins (`Parts`)
from the spec, says where it reads and writes (`Links`) and how its runs commit (`RunMode`),
so the runtime builds nothing of its own and no flag is set on it after construction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from detectkd.collectors.base import Collector
from detectkd.detectors.base import Detector
from detectkd.resources import Resources
from detectkd.storage.base import DataStore, Store
from detectkd.telemetry import Telemetry


@dataclass(frozen=True)
class RunMode:
    """How a runtime's runs commit; fixed when it is assembled."""

    save_states: bool = True  # False: `load-history`, which must not overwrite the daemon's state
    save_watermark: bool = True  # False: the daemon's history loader (live runs own the watermark)
    replay: bool = False  # a backtest: every period may notify, as if each were a live run's newest


LIVE = RunMode()
LOADER = RunMode(save_states=False, save_watermark=False)  # the daemon's history loader
REPLAY = RunMode(replay=True)  # a backtest
BACKFILL = RunMode(save_states=False)  # `load-history`: the daemon owns alert state


@dataclass(frozen=True)
class Parts:
    """The metric's plug-ins, built from its spec (the detectors under its calendar)."""

    collector: Collector
    detectors: list[Detector]


@dataclass(frozen=True)
class Links:
    """Where a runtime reads and writes, and whom it tells."""

    store: Store  # alert state, outbox, watermark (and data, unless `data_store`)
    resources: Resources
    telemetry: Telemetry | None = None
    on_alert: Callable[[], None] | None = None  # an outbox row was committed
    data_store: Callable[[], Awaitable[DataStore]] | None = None  # where points and detections live
    link_template: str | None = None  # the alerts' link (`generator_url`)
    silenced: Callable[[str, float], bool] | None = None  # (series, at): a silence matches it
