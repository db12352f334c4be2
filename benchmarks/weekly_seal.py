"""What `auto`'s weekly profile costs a run's checkpoint and a seal (issue 27).

    .venv/bin/python benchmarks/weekly_seal.py [--profiles 10000]

A run checkpoints the profile of every series it touches (`SeriesMemory.window`, given back
by a rollback). Printed: the memory `--profiles` such checkpoints hold (tracemalloc), and the
CPU of a seal of one new hour bucket (the best of five rounds of 479 hourly seals of a
one-minute series), the work copy-on-seal moved a copy of the means into.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectkd.detectors.autoweekly import HOUR, WeeklyProfile, seal

MONDAY = 1767571200  # 2026-01-05 00:00 UTC
STEP = 60


def one_minute(days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = MONDAY + STEP * np.arange(days * 1440, dtype=np.int64)
    return t, np.random.default_rng(0).normal(100.0, 2.0, t.size), np.full(t.size, 100.0)


def checkpoint_mib(profiles: int) -> float:
    t, x, d = one_minute(22)
    full = WeeklyProfile(STEP)
    seal(full, t, x, d, int(t[-1]))
    held = [full.copy() for _ in range(profiles)]
    tracemalloc.start()
    kept = [p.copy() for p in held]
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(kept) == profiles
    return size / 2**20


def seal_us() -> float:
    t, x, d = one_minute(22)
    rounds = []
    for _ in range(5):
        p = WeeklyProfile(STEP)
        seal(p, t[:1440], x[:1440], d[:1440], MONDAY + 24 * HOUR)
        sealed, began = 0, time.perf_counter()
        for h in range(25, 21 * 24):
            lo, hi = (h - 1) * 60, h * 60
            sealed += seal(p, t[lo:hi], x[lo:hi], d[lo:hi], MONDAY + h * HOUR)
        rounds.append((time.perf_counter() - began) / sealed * 1e6)
    return min(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=10_000)
    args = parser.parse_args()
    print(f"checkpoints of {args.profiles:,} full profiles hold {checkpoint_mib(args.profiles):.1f} MiB")
    print(f"a seal of one new hour bucket: {seal_us():.2f} us (best of 5 rounds)")


if __name__ == "__main__":
    main()
