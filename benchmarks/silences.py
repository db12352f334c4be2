"""How long the event loop stalls while the daemon refreshes N stored silences.

    python -m benchmarks.silences [--silences 2000] [--old]

A probe task sleeps 1 ms in a loop; the longest gap beyond that while a refresh runs is
the stall (what `/healthz`, the API and every metric's run wait). `--old` refreshes as
before issue 26: every document read, parsed and its regexes compiled on the loop, every
time (it runs on a checkout without `detectkd.runtime.silence_sync` too). Without it:
`SilenceSync` the first time (cold), then unchanged (the usual 10 s tick), then after one
other silence was added.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from detectkd.alerting.silences import Silences, load_silences, new_silence
from detectkd.storage.sqlite import SqliteStore


def matchers(i: int) -> list[str]:
    """Each silence its own regexes (as in life; `re`'s cache of 512 patterns does not hold them)."""
    return [f"metric=~orders_{i}_.*", f"region=~eu-(west|east)-{i}[0-9]+", f"host!~db{i}[0-9]+", "tag=shop"]


async def stall(work: Callable[[], Awaitable[Any]], rounds: int = 3) -> float:
    """The longest loop stall (s) over `rounds` runs of `work`."""
    worst, done = 0.0, False

    async def probe() -> None:
        nonlocal worst
        while not done:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - t - 0.001)

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.01)
    for _ in range(rounds):
        await work()
    done = True
    await task
    return worst


async def main(n: int, old: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "dtk.db")
        await store.open()
        for i in range(n):
            s = new_silence(matchers(i), time.time(), time.time() + 86400, f"maintenance {i} " + "x" * 200)
            await store.silence_save(s.id, s.to_json(), s.ends_at)
        silences = Silences()
        if old:

            async def refresh() -> None:
                silences.replace_all(load_silences(await store.silences_load())[0])

            print(f"{n} silences, old refresh: loop stall {await stall(refresh) * 1000:.0f} ms per refresh")
        else:
            from detectkd.runtime.silence_sync import SilenceSync

            sync = SilenceSync(silences, store)
            await asyncio.to_thread(load_silences, [])  # the thread pool started (once per process)
            cold = await stall(lambda: sync.refresh(force=True), rounds=1)
            unchanged = await stall(sync.refresh)
            more = new_silence(matchers(n), time.time(), time.time() + 60)

            async def one_more() -> None:
                await store.silence_save(more.id, more.to_json(), more.ends_at)
                await sync.refresh()

            changed = await stall(one_more)
            print(
                f"{len(silences.items)} silences: loop stall {cold * 1000:.1f} ms (first read), "
                f"{unchanged * 1000:.1f} ms (unchanged), {changed * 1000:.1f} ms (one changed)"
            )
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--silences", type=int, default=2000)
    parser.add_argument("--old", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.silences, args.old))
