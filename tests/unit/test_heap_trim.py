"""`heap.trim`: what a worker thread allocated and the loop's thread freed goes back to the
system (issue 28: the restart snapshot is read in a worker thread)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from detectkd.runtime import heap


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_pages_a_worker_thread_allocated_and_the_loop_freed_go_back() -> None:
    arrays: list[np.ndarray] = []

    def read() -> None:  # as `snapshot.load` in a worker thread: 16 KB arrays
        arrays.extend(np.ones(2000) for _ in range(12_000))  # 183 MiB

    t = threading.Thread(target=read)
    t.start()
    t.join()
    kept = arrays[::4]  # every fourth stays (adopted): the arena cannot shrink from its top
    arrays.clear()
    freed = rss_mib()
    assert heap.trim() is True
    after = rss_mib()
    assert freed - after > 80, (freed, after)  # of the 137 MiB freed in the middle of the arena
    assert len(kept) == 3000 and float(kept[-1][0]) == 1.0


SCRAPES = """
import asyncio, sys
from pathlib import Path
from detectkd.runtime import heap
from detectkd.telemetry import Telemetry

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

async def main():
    if sys.argv[1] == "map":
        assert heap.map_large()
    t = Telemetry()
    for i in range(10000):  # every per-metric family, one sample each: an 8 MiB body
        for f in t.families:
            f.labels(f"m{i}", *("x" for _ in f.labelnames[1:]))
    await asyncio.to_thread(t.exposition)
    before = rss()
    for _ in range(12):  # two scrapes at a time, each in a worker thread
        await asyncio.gather(*(asyncio.to_thread(t.exposition) for _ in range(2)))
    print(rss() - before)

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_scrapes_of_ten_thousand_metrics_do_not_keep_their_bodies_in_the_rss() -> None:
    """Issue 28: a /metrics body of 10,000 metrics is three 8 MiB blocks in a worker thread;
    with glibc's moving mmap threshold 24 scrapes kept about 42 MiB of freed pages in the
    worker threads' arenas. `map_large` (called by the daemon's start) maps such blocks
    apart: they go back when freed. In a process of its own (mallopt is process-wide)."""
    out = subprocess.run(
        [sys.executable, "-c", SCRAPES, "map"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    kept = float(out.stdout.split()[-1])
    assert kept < 20, kept
