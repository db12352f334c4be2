"""A graceful stop while first starts load their history (issue 28), in-process on a real
SQLite source and store: the loader's work ends at once, even when a library below lost the
cancellation (Python 3.11's `wait_for` did, for a query that finished as it was cancelled)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

from detectkd.collectors.base import Collector, Row, Window
from detectkd.runtime.daemon import Daemon
from tests.support.inprocess import make_settings, within
from tests.support.metrics import hourly_orders

HOUR = 3600
LOST_AT = 5  # the loader's query whose cancellation is lost


def warm_up_metric(tmp_path: Path) -> None:
    """orders: hourly, an aggregate of one period (one query per period), an 8-day window:
    a warm-up of 192 queries in the background, its live runs waiting for it."""
    now = int(time.time())
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    rows = [(t, 100.0 + t // HOUR % 3) for t in range(now - now % HOUR - 10 * 86400, now, HOUR)]
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", rows)
    conn.commit()
    conn.close()
    hourly_orders(
        tmp_path,
        "8d",
        """SELECT avg(value) AS value FROM src
        WHERE period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'""",
    )


class LosesACancel:
    """A source library whose `LOST_AT`th query waits, and loses the cancellation that
    arrives meanwhile: it returns its rows, as Python 3.11's `wait_for` returned those of a
    query that finished just as its task was cancelled (cpython gh-86296)."""

    def __init__(self, inner: Collector, asked: list[Window], waiting: asyncio.Event) -> None:
        self.inner, self.asked, self.waiting = inner, asked, waiting

    async def collect(self, window: Window) -> list[Row]:
        self.asked.append(window)
        rows = await self.inner.collect(window)
        if len(self.asked) == LOST_AT:
            self.waiting.set()
            with contextlib.suppress(asyncio.CancelledError):  # lost
                await asyncio.Event().wait()
        return rows

    async def close(self) -> None:
        await self.inner.close()


async def test_a_stop_during_a_warm_up_ends_its_loading_even_when_a_cancellation_is_lost(
    tmp_path: Path,
) -> None:
    warm_up_metric(tmp_path)
    d = Daemon(make_settings(tmp_path))
    asked: list[Window] = []
    waiting = asyncio.Event()
    paced = d.history.paces.wrap

    def lossy(source: str, collector: Collector) -> Collector:
        return LosesACancel(paced(source, collector), asked, waiting)

    d.history.paces.wrap = lossy  # type: ignore[method-assign]
    await d.start()
    served = asyncio.create_task(d.serve())
    await within(waiting.wait(), 30, f"the warm-up's query {LOST_AT}")
    d.stop_event.set()  # SIGTERM
    await within(served, 30, "the graceful stop")
    # The loader asked nothing after its cancellation was lost: it did not load the other
    # periods of its warm-up (and then its fill) while the stop waited for it.
    assert len(asked) == LOST_AT
    assert (tmp_path / "data" / "memory.snapshot").exists()  # the stop's snapshot is written
