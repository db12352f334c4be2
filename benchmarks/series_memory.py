"""Where the memory of many-series metrics goes, in this process (issue 28): `scale.py --series`'s
metrics, source and store, the `Daemon` object without HTTP or a subprocess.

    .venv/bin/python benchmarks/series_memory.py --metrics 5 --series 1000 [--runs 3] [--trace 25]

Starts the daemon on M metrics of S series each (`auto` unless `--detector mad`, `--history`
points stored per series), waits until every metric has finished `--runs` runs, and prints the
RSS (now and peak) and what tracemalloc holds then, per series, with the `--trace N` largest
allocation sites (tracemalloc slows the runs: leave it out, `--trace 0`, for the RSS alone).
`--rss-every S` prints the RSS and the runs done every S seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.scale import (  # noqa: E402
    DETECTORS,
    METRIC_SERIES,
    build_source,
    preload_store,
    write_daemon,
)
from detectkd import logs  # noqa: E402
from detectkd.config.settings import load_settings  # noqa: E402
from detectkd.runtime import heap  # noqa: E402
from detectkd.runtime.daemon import Daemon  # noqa: E402


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (f, ctypes.c_size_t)
        for f in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_mib() -> str:
    """glibc's heap: in use, free but held (every arena), mapped apart (MiB)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError):
        return "no mallinfo2"
    m = libc.mallinfo2()
    mib = 2**20
    used, free, mapped = m.uordblks / mib, m.fordblks / mib, m.hblkhd / mib
    return f"heap in use {used:.0f} MiB, free held {free:.0f}, mapped {mapped:.0f}"


def pymalloc_mib() -> str:
    """Python's small-object allocator: its arenas, and the blocks in use in them (MiB)."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        fd = os.dup(2)
        with tempfile.TemporaryFile("w+") as f:
            os.dup2(f.fileno(), 2)
            try:
                sys._debugmallocstats()
            finally:
                os.dup2(fd, 2)
                os.close(fd)
            f.seek(0)
            text = f.read()
    got = {}
    for line in text.splitlines():
        for key in (
            "# arenas allocated current",
            "# bytes in allocated blocks",
            "# bytes in available blocks",
            "# bytes lost to pool headers",
            "# bytes lost to quantization",
            "Total",
        ):
            if line.startswith(key):
                got[key] = int(line.rsplit("=", 1)[1].replace(",", "").strip())
    arenas = got.get("# arenas allocated current", 0)
    used = got.get("# bytes in allocated blocks", 0) / 2**20
    free = got.get("# bytes in available blocks", 0) / 2**20
    return f"pymalloc {arenas} arenas, {used:.0f} MiB in use, {free:.0f} free in used pools"


def type_counts() -> dict[str, int]:
    """Objects the garbage collector tracks, by type (frozen ones included)."""
    out: dict[str, int] = {}
    for o in gc.get_objects():
        t = type(o).__qualname__
        out[t] = out.get(t, 0) + 1
    return out


def rss_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process, MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line[:5]] = int(line.split()[1]) / 1024
    return out["VmRSS"], out["VmHWM"]


class Held:
    """Window loads read from the store and not yet taken by their windows (`--held`)."""

    now = peak = loads = peak_loads = 0

    @classmethod
    def watch(cls) -> None:
        from detectkd.runtime.memory import SeriesMemory
        from detectkd.storage.sqlite import SqliteStore

        load = SeriesMemory.load
        # The first run's window read: `read_window` where the build has it, else `read_points`.
        name = "read_window" if hasattr(SqliteStore, "read_window") else "read_points"
        read = getattr(SqliteStore, name)

        async def reading(self: SqliteStore, metric: str, *a: object) -> object:
            out = await read(self, metric, *a)
            if name == "read_window" or a[0] is None:  # (read_points: every series)
                cls.now += sum(map(len, out.values()))
                cls.loads += 1
                cls.peak, cls.peak_loads = max(cls.peak, cls.now), max(cls.peak_loads, cls.loads)
            return out

        def loaded(self: SeriesMemory, stored: dict[str, Any]) -> None:
            load(self, stored)
            cls.now -= sum(map(len, stored.values()))
            cls.loads -= 1

        setattr(SqliteStore, name, reading)
        SeriesMemory.load = loaded  # type: ignore[method-assign,assignment]


def account(d: Daemon, total: int) -> None:
    """What the windows and `auto`'s per-series state hold, per series, by array (a buffer
    shared by several windows counted once), and the points a window holds."""
    import numpy as np

    seen: set[int] = set()
    sizes: dict[str, int] = {}
    points = 0

    def add(kind: str, arr: Any) -> None:
        if isinstance(arr, np.ndarray):
            base = arr if arr.base is None else arr.base
            if not isinstance(base, np.ndarray) or id(base) in seen:
                return
            seen.add(id(base))
            sizes[kind] = sizes.get(kind, 0) + base.nbytes
        elif arr is not None:
            sizes[kind] = sizes.get(kind, 0) + sys.getsizeof(arr)

    for slot in d.slots.values():
        memory = slot.runtime.memory
        for w in memory.windows.values():
            points += len(w)
            times, values, feats = w.saved()
            add("window times", times)
            add("window values", values)
            for c in feats.values():
                add("window features", c)
        for det in memory.detectors:
            for m in getattr(det, "_memo", {}).values():
                add("auto |z| ring", m.recent)
                add("auto sustain medians", getattr(m, "medians", None))
                packed = getattr(m, "packed", None)
                for a in getattr(packed, "_arrays", ()):
                    add("auto packed fit", a)
    if not total:
        return
    print(f"  windows hold {points / total:.0f} points a series")
    for kind, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {size / 2**10 / total:8.2f} KiB a series  {kind}")


async def probe(args: argparse.Namespace) -> None:
    n, series, step = args.metrics, args.series, args.interval
    with tempfile.TemporaryDirectory(prefix="dtk-smem-") as tmp:
        root = Path(tmp)
        now = int(time.time())
        build_source(root / "src.db", n, step, now - 2 * step, now + 3600, series=series)
        await preload_store(root / "data" / "detectkd.db", n, step, now, args.history, series=series)
        template = METRIC_SERIES.replace("{n}", str(series))
        texts = (template.format(i=i, interval=step, detector=DETECTORS[args.detector]) for i in range(n))
        write_daemon(root, texts)
        os.chdir(root)
        settings = load_settings(root / "detectkd.yaml")
        logs.configure(settings.log_format, "error")
        gc.collect()
        before = type_counts() if args.types else {}
        base = rss_mib()[0]
        if args.trace:
            tracemalloc.start(args.frames)
        if args.held:
            Held.watch()
        d = Daemon(settings)
        await d.start()
        serve = asyncio.create_task(d.serve())
        t0 = time.monotonic()
        print(
            f"ready {time.monotonic() - t0:.1f} s, RSS {rss_mib()[0]:.0f} MiB (before the daemon {base:.0f}, "
            f"{heap_mib()})"
        )
        traced0 = tracemalloc.get_traced_memory()[0] if args.trace else 0
        last_print = 0.0
        while True:
            runs = [s.runtime.status.runs for s in d.slots.values()]
            if min(runs) >= args.runs:
                break
            if args.rss_every and time.monotonic() - last_print >= args.rss_every:
                last_print = time.monotonic()
                cur, peak = rss_mib()
                held = f", window loads held {Held.loads} ({Held.now} points)" if args.held else ""
                print(
                    f"  {last_print - t0:6.1f} s: RSS {cur:.0f} MiB (peak {peak:.0f}), runs {sum(runs)}{held}"
                )
            await asyncio.sleep(0.5)
        gc.collect()
        cur, peak = rss_mib()
        total = n * series
        print(
            f"{n} x {series} {args.detector}, {args.history} points stored per series, {args.runs} runs each "
            f"after {time.monotonic() - t0:.0f} s: RSS {cur:.0f} MiB (peak {peak:.0f}), "
            f"{(cur - base) * 1024 / total:.1f} KiB a series above the process before the daemon "
            f"(peak {(peak - base) * 1024 / total:.1f})"
        )
        print(f"  {heap_mib()}; {pymalloc_mib()}")
        for s in d.slots.values():
            st = s.runtime.status
            if st.failures or st.last_error:
                print(f"  {s.runtime.name}: {st.runs} runs, {st.failures} failed, last error {st.last_error}")
        account(d, total)
        if args.held:
            print(f"  window loads held at most: {Held.peak_loads} at once, {Held.peak} points")
        if args.types:
            after = type_counts()
            grown = sorted(((c - before.get(t, 0), t) for t, c in after.items()), reverse=True)
            for c, t in grown[: args.types]:
                print(f"  {c / total:8.2f} a series  {t}")
        heap.trim()
        print(f"  after malloc_trim: RSS {rss_mib()[0]:.0f} MiB, {heap_mib()}")
        if args.trace:
            now_traced, peak_traced = tracemalloc.get_traced_memory()
            snap = tracemalloc.take_snapshot()
            print(
                f"traced {now_traced / 2**20:.1f} MiB (peak {peak_traced / 2**20:.1f}), since ready "
                f"{(now_traced - traced0) / 2**10 / total:.2f} KiB a series"
            )
            key = "traceback" if args.frames > 1 else "lineno"
            for stat in snap.statistics(key)[: args.trace]:
                where = " > ".join(
                    f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback
                )  # oldest first
                size = stat.size
                print(f"  {size / 2**20:8.2f} MiB {size / total:9.0f} B/series {stat.count:8d}  {where}")
        d.stop_event.set()
        await serve


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", type=int, default=5)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--history", type=int, default=120, help="points stored per series")
    ap.add_argument("--detector", choices=["mad", "auto"], default="auto")
    ap.add_argument("--runs", type=int, default=2, help="runs every metric finishes before the figures")
    ap.add_argument(
        "--trace", type=int, default=25, help="largest allocation sites printed (0: no tracemalloc)"
    )
    ap.add_argument("--frames", type=int, default=1, help="tracemalloc frames per site")
    ap.add_argument("--types", type=int, default=0, help="object types that grew most, per series")
    ap.add_argument("--held", action="store_true", help="count window loads read and not yet loaded")
    ap.add_argument("--rss-every", type=float, default=0.0)
    asyncio.run(probe(ap.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
