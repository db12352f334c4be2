"""What `shadow:` variants cost a metric's run (issue 31).

    .venv/bin/python benchmarks/shadow.py [--runs 2000] [--series 10]

One metric in process (`assemble`, as the daemon builds it) on a SQLite source of
`--series` series of noisy values (seed 7), a `mad` detector (window 100), a SQLite store;
`--runs` live runs of one period each, timed in process CPU seconds, with 0, 1 and 5
variants (`mad` with n_sigma 2, 2.5, ...: tighter, so they would alert now and then), one
variant that changes only conditions (it reuses the metric's detections), and the cost of
the hook itself on a metric without variants (an empty `ShadowSet.run`).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectkd.resources import Resources  # noqa: E402
from detectkd.runtime.slot import Deps, assemble  # noqa: E402
from detectkd.specs.loader import load_metrics  # noqa: E402
from detectkd.storage.sqlite import SqliteStore  # noqa: E402

STEP = 60
START = 1_767_225_600  # 2026-01-01 00:00 UTC

METRIC = """\
name: m
schedule: {{interval: 1m, delay: 0s}}
collector:
  type: sqlite
  series_columns: [series]
  params:
    database: {db}
    query: >-
      SELECT period_time, series, value FROM src
      WHERE period_time >= {{{{ period_start_ts }}}} AND period_time < {{{{ period_finish_ts }}}}
detector: {{type: mad, params: {{window_size: 100, n_sigma: 4, min_samples: 20, use_weighted: false}}}}
alerter: {{type: log}}
"""


def variants(n: int) -> str:
    if not n:
        return ""
    if n < 0:  # one variant that changes only conditions: it reuses the metric's detections
        return "shadow:\n  - name: quick\n    conditions: {consecutive_anomalies: 1}\n"
    out = "shadow:\n"
    for i in range(n):
        sigma = 2 + i / 2
        out += (
            f"  - name: v{i}\n    detector: {{type: mad, params: {{window_size: 100, n_sigma: {sigma},"
            " min_samples: 20, use_weighted: false}}\n"
        )
    return out


def source(path: Path, series: int, periods: int) -> None:
    rnd = random.Random(7)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE src (period_time INTEGER, series TEXT, value REAL)")
    rows = [(START + k * STEP, f"s{s}", 100 + rnd.gauss(0, 5)) for k in range(periods) for s in range(series)]
    conn.executemany("INSERT INTO src VALUES (?, ?, ?)", rows)
    conn.execute("CREATE INDEX src_t ON src (period_time)")
    conn.commit()
    conn.close()


async def measure(tmp: Path, n: int, runs: int, warm: int) -> tuple[float, int]:
    metrics = tmp / f"metrics{n + 10}"
    metrics.mkdir()
    (metrics / "m.yaml").write_text(METRIC.format(db=tmp / "src.db") + variants(n))
    result = load_metrics([metrics], None, env={})
    assert result.ok, result.all_errors()
    store = SqliteStore(tmp / f"store{n + 10}.db")
    await store.open()
    resources = Resources()
    slot = assemble(result.metrics["m"], Deps(store, resources, channels=False))
    rt = slot.runtime
    await rt.check(START, START + warm * STEP, notify=False, commit=True)  # windows filled
    t0 = time.process_time()
    for k in range(warm, warm + runs):
        await rt.check(START + k * STEP, START + (k + 1) * STEP, notify=True, commit=True)
    spent = time.process_time() - t0
    stored = len(await store.shadow_alerts("m", 0, 2**40, 10**6))
    await slot.stop()
    await resources.close()
    await store.close()
    return spent, stored


async def hook_cost(tmp: Path, calls: int) -> float:
    from detectkd.runtime.shadow import ShadowSet

    empty = ShadowSet.__new__(ShadowSet)
    empty.variants = []
    t0 = time.process_time()
    for _ in range(calls):
        await empty.run(None, [], [], 0, 0, True, None)  # type: ignore[arg-type]
    return (time.process_time() - t0) / calls


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--series", type=int, default=10)
    args = ap.parse_args()
    warm = 150
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        source(tmp / "src.db", args.series, warm + args.runs)
        base = None
        for n in (0, 1, -1, 5):
            spent, stored = await measure(tmp, n, args.runs, warm)
            base = base or spent
            what = "1 (conditions only)" if n < 0 else str(n)
            print(
                f"variants={what}: {spent / args.runs * 1000:.3f} ms CPU per run "
                f"({spent / base:.2f}x), would-be alerts stored: {stored}"
            )
        print(f"empty hook (a metric without variants): {await hook_cost(tmp, 100_000) * 1e6:.2f} us per run")


if __name__ == "__main__":
    asyncio.run(main())
