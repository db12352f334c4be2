"""Peak memory of a query whose result is above `collector.max_rows`, per SQL source.

    .venv/bin/python benchmarks/huge_result.py [ROWS] [MAX_ROWS]

Each source runs in a fresh process that builds the collector as the daemon does, runs a
query of ROWS rows (default 2,500,000: a minute per row, and a value) with the default
limit of 1,000,000, and prints its peak RSS and how long the refusal took. A collector that
reads everything first (the old `fetchall()`) peaks with the whole result; one that stops at
max_rows + 1 peaks with max_rows rows. Needs PostgreSQL on 127.0.0.1:5432 and MariaDB on
:3306 (as the tests do).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if "DTK_CODE" not in os.environ:
    sys.path.insert(0, str(REPO))

QUERIES = {
    "postgres": (
        {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"},
        "SELECT timestamp '2026-01-01' + g * interval '1 minute' AS period_time, g::float8 AS value "
        "FROM generate_series(1, {n}) g",
    ),
    "mysql": (
        {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "mysql"},
        "SELECT timestamp '2026-01-01 00:00:00' + interval seq minute AS period_time, seq * 1.0 AS value "
        "FROM seq_1_to_{n}",
    ),
    "sqlite": (
        {},
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
        "SELECT datetime(1767225600 + x * 60, 'unixepoch') AS period_time, x * 1.0 AS value FROM c",
    ),
}


async def one(kind: str, n: int, limit: int) -> None:
    from detectkd.collectors.registry import COLLECTORS
    from detectkd.errors import CollectError
    from detectkd.resources import Resources

    params, query = QUERIES[kind]
    if kind == "sqlite":
        db = Path(tempfile.mkdtemp()) / "empty.db"
        import sqlite3

        sqlite3.connect(db).close()
        params = {"database": str(db)}
    entry = COLLECTORS[kind]
    model = entry.params.model_validate({**params, "query": query.format(n=n), "timeout": "300s"})
    resources = Resources()
    try:
        collector = entry.build(model, resources, max_rows=limit)
    except TypeError:  # a build from before the limit was passed down
        collector = entry.build(model, resources)
    window = dt.timedelta(minutes=1)
    from detectkd.collectors.base import Window

    t0 = time.perf_counter()
    try:
        rows = await collector.collect(Window(0, 60, window, ZoneInfo("UTC")))
        outcome = f"{len(rows):,} rows read, refused after" if len(rows) > limit else f"{len(rows):,} rows"
    except CollectError as exc:
        outcome = f"refused while reading ({str(exc)[:40]}...)"
    seconds = time.perf_counter() - t0
    await collector.close()
    await resources.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{kind:9} {n:>12,} rows, max_rows {limit:,}: peak RSS {peak:,.0f} MiB, {seconds:.1f} s, {outcome}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_500_000
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    if os.environ.get("DTK_ONE"):
        asyncio.run(one(os.environ["DTK_ONE"], n, limit))
        return
    for kind in QUERIES:  # one process each: ru_maxrss is per process
        subprocess.run([sys.executable, __file__, str(n), str(limit)], env={**os.environ, "DTK_ONE": kind},
                       check=True)  # fmt: skip


if __name__ == "__main__":
    main()
