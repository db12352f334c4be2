"""What writing and reading the memory snapshot's file costs (issue 28: the checksums).

    python -m benchmarks.snapshot_file [--metrics 10000] [--points 2000] [--repeat 3] [--dir DIR]

`--metrics` parts of one `auto` series each, a window of `--points` (4-byte times, 8-byte
values) and a ring of as many |z| (4 bytes): the 10,000-metric restart's shape. Each
repeat writes the file (`snapshot.save`: fdatasync every 8 MiB, fsync, rename) and reads
it back (`snapshot.load`, then every part read as the metrics' first runs read them),
printing the CPU (this process) and wall seconds of each. Time figures: run it under
`flock /work/wt/bench.lock`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from detectkd.runtime import snapshot
from detectkd.runtime.memory import Saved
from detectkd.runtime.windows import EPOCH


def parts(metrics: int, points: int) -> dict[str, Saved]:
    rng = np.random.default_rng(1)
    times = (1_795_000_000 - EPOCH + np.arange(points) * 60).astype(np.int32)
    out = {}
    for i in range(metrics):
        s = Saved("fp", 240)
        s.windows = {"": (times.copy(), rng.normal(100, 5, points), {})}
        s.states = {"auto": {"": (rng.random(points).astype(np.float32), (0.0,) * 6)}}
        out[f"m{i}"] = s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    args = ap.parse_args()
    saved = parts(args.metrics, args.points)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = Path(d) / snapshot.FILE
        for _ in range(args.repeat):
            c0, w0 = time.process_time(), time.perf_counter()
            size = snapshot.save(path, saved)
            c1, w1 = time.process_time(), time.perf_counter()
            back = snapshot.load(path)
            for part in back.values():
                part.read()
            c2, w2 = time.process_time(), time.perf_counter()
            write, read = (
                f"{c1 - c0:.2f} s CPU ({w1 - w0:.2f} s wall)",
                f"{c2 - c1:.2f} s CPU ({w2 - w1:.2f} s wall)",
            )
            print(
                f"{snapshot.MAGIC.decode()} {size / 2**20:.0f} MiB: write {write}, read every part {read}",
                flush=True,
            )
            del back


if __name__ == "__main__":
    main()
