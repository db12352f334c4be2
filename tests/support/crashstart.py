"""What the crash-start tests share (`test_catchup`, `test_catchup_revised`): a ten-minute
grid from `T0` with `start_time` five days of source rows back, and an `Env` that builds the
metric's spec, a runtime on a store of its own (a copy of a store is the store a `kill -9`
left), and the snapshots of runtimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from detectkd.config.settings import Settings
from detectkd.resources import Resources
from detectkd.runtime.runner import MetricRuntime
from detectkd.runtime.snapshots import Snapshots
from detectkd.specs.loader import MetricSpec, load_metrics
from detectkd.storage.sqlite import SqliteStore
from tests.support.files import write
from tests.support.metrics import sqlite_metric
from tests.support.runtimes import runtime

STEP = 600
T0 = 1_795_000_000 - 1_795_000_000 % STEP
DAY = 86400 // STEP
START = datetime.fromtimestamp(T0, UTC).isoformat()
SCHEDULE = f"{{interval: 10m, max_catch_up: 1000, start_time: '{START}'}}"


def t(k: int) -> int:
    """The k-th period of the fifth day (the source's row 4 * DAY + k); the run that ends at
    `t(k)` judges `t(k - 1)`."""
    return T0 + (4 * DAY + k) * STEP


@dataclass
class Env:
    tmp: Path
    db: Path
    resources: Resources

    def spec(self, detector: str = "type: auto", series: bool = False, extra: str = "") -> MetricSpec:
        columns = "period_time, series, value" if series else "period_time, value"
        collector = "series_columns: [series]" if series else ""
        text = sqlite_metric("orders", self.db, schedule=SCHEDULE, detector=detector, columns=columns,
                             collector=collector, table="multi" if series else "src")  # fmt: skip
        write(self.tmp / "m" / "orders.yaml", text + extra)
        result = load_metrics([self.tmp / "m"], None, env={})
        assert result.ok, result.all_errors()
        return result.metrics["orders"]

    async def store(self, name: str) -> SqliteStore:
        store = SqliteStore(self.tmp / name)
        await store.open()
        return store

    async def runtime(self, spec: MetricSpec, db: str) -> MetricRuntime:
        """A runtime on store `db` with its stored alert states, as the daemon builds it."""
        store = await self.store(db)
        states = {
            series: st for (metric, series), st in (await store.load_states()).items() if metric == spec.name
        }
        return runtime(spec, store, self.resources, states=states)

    def snapshots(self, runtimes: list[MetricRuntime], rate: float = 1024.0) -> Snapshots:
        settings = Settings(data_dir=self.tmp / "data", snapshot_write_mib_s=rate)
        (self.tmp / "data").mkdir(exist_ok=True)
        return Snapshots(settings, lambda: runtimes)
