"""The late-series tests' source (a SQLite table of (period_time, s, value) rows), store
reads and metric (`runtime.serieswarm`, `runtime.freshseries`)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.metrics import hourly_orders

if TYPE_CHECKING:
    from detectkd.runtime.runner import MetricRuntime

HOUR = 3600
NOW = int(time.time()) // HOUR * HOUR
QUERY = """SELECT period_time, s, value FROM src
        WHERE period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'"""


def rows(tmp_path: Path, series: str, hours: list[int], spike: int | None = None) -> None:
    """src rows of `series` at NOW + h * HOUR for h in `hours` (400 at `spike`, else 100..102)."""
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE IF NOT EXISTS src (period_time TEXT, s TEXT, value REAL)")
    conn.executemany(
        "INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?, ?)",
        [(NOW + h * HOUR, series, 400.0 if h == spike else 100.0 + h % 3) for h in hours],
    )
    conn.commit()
    conn.close()


async def appears(
    tmp_path: Path, rt: MetricRuntime, series: str, hours: list[int], spike: int | None = None
) -> None:
    """The metric runs at NOW with the series it has, then `series` appears in the source
    (`rows`) and is first seen by the run at NOW + HOUR (its history load is asked there)."""
    await rt.run(NOW)
    rows(tmp_path, series, hours, spike)
    await rt.run(NOW + HOUR)


def stored(tmp_path: Path, series: str) -> list[int]:
    conn = sqlite3.connect(tmp_path / "data" / "dtk.db")
    got = conn.execute(
        "SELECT period FROM dtk_datapoints WHERE metric = 'orders' AND series = ? ORDER BY period", (series,)
    ).fetchall()
    conn.close()
    return [p for (p,) in got]


def metric(tmp_path: Path, collector: str = "") -> None:
    # mad over 2 days (48 periods): the first start loads it inline; min_samples 10
    hourly_orders(tmp_path, "2d", QUERY, extra="\n  series_columns: [s]" + collector)
