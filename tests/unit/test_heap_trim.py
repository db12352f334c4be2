"""`heap.trim`: what a worker thread allocated and the loop's thread freed goes back to the
system (issue 28: the restart snapshot is read in a worker thread)."""

from __future__ import annotations

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
