"""How old the memory snapshot is, on /metrics: the in-process daemon's real HTTP app scraped
after a background snapshot is written, after one fails, and after a start that found one."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from tests.support.files import write
from tests.support.inprocess import listening, running
from tests.support.metrics import Source, fill, sqlite_metric

HOUR = 3600
TS = "detectk_memory_snapshot_last_success_timestamp_seconds"
BYTES = "detectk_memory_snapshot_bytes"
SECONDS = "detectk_memory_snapshot_duration_seconds"
FAILURES = "detectk_memory_snapshot_failures_total"


async def scrape(base: str) -> dict[str, float]:
    """The snapshot's samples on /metrics."""
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as r:
        assert r.status == 200
        text = await r.text()
    return {
        name: float(value)
        for name, value in (line.split(" ", 1) for line in text.splitlines())
        if name.startswith("detectk_memory_snapshot_") and not name.endswith("_created")
    }


async def test_the_last_snapshot_s_time_size_and_duration_and_the_failures_are_on_metrics(
    tmp_path: Path,
) -> None:
    now = int(time.time()) // HOUR * HOUR
    src = Source(tmp_path / "src.db")
    fill(src, "visits", now - 2 * 86400, now, HOUR)
    detector = "type: mad\nparams: {window_size: 1d, n_sigma: 5, min_samples: 10}"
    write(
        tmp_path / "metrics.d" / "visits.yaml",
        sqlite_metric("visits", src.path, series="visits", detector=detector),
    )
    file = tmp_path / "data" / "memory.snapshot"
    async with running(tmp_path) as d, listening(d, {}) as base:
        d.scheduler.pause()
        assert await scrape(base) == {TS: 0.0, BYTES: 0.0, SECONDS: 0.0, FAILURES: 0.0}  # none yet
        await d.slots["visits"].runtime.run(now)  # memory to write: its window
        before = time.time()
        assert await d.snapshots.write() is not None
        written = await scrape(base)
        assert before <= written[TS] <= time.time()
        assert written[BYTES] == file.stat().st_size > 24 * 16  # its window: 24 points, 16 bytes each
        assert 0.0 < written[SECONDS] < 60.0
        assert written[FAILURES] == 0.0

        d.snapshots.path = tmp_path / "gone" / "memory.snapshot"  # its directory is not there
        assert await d.snapshots.write() is None
        failed = await scrape(base)
        assert failed[FAILURES] == 1.0
        assert failed[TS] == written[TS]  # the last one written is still that one

    # A start that finds a snapshot: its age from the start on (the file's time), not 0.
    async with running(tmp_path) as d, listening(d, {}) as base:
        found = await scrape(base)
        assert found[TS] == file.stat().st_mtime
        assert found[BYTES] == file.stat().st_size
