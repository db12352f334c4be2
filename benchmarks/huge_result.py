"""Peak memory of a query whose result is above `collector.max_rows`, per SQL source, and of
an HTTP source answering 100 MB of non-JSON nine times.

    .venv/bin/python benchmarks/huge_result.py [ROWS] [MAX_ROWS]

Each source runs in a fresh process that builds the collector as the daemon does, runs a
query of ROWS rows (default 2,500,000: a minute per row, and a value) with the default
limit of 1,000,000, and prints its peak RSS and how long the refusal took. A collector that
reads everything first (the old `fetchall()`) peaks with the whole result; one that stops at
max_rows + 1 peaks with max_rows rows. The HTTP source runs with the default
`max_body_bytes` (refused on its Content-Length) and with 128 MiB (read, then a failed
parse): the RSS after the ninth run says whether failed bodies are kept. Needs PostgreSQL
on 127.0.0.1:5432 and MariaDB on :3306 (as the tests do).
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

from detectkd.collectors.base import Window

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


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def http_runs(url: str, max_body: int | None, runs: int = 9) -> None:
    from detectkd.collectors.registry import COLLECTORS
    from detectkd.errors import CollectError
    from detectkd.resources import Resources

    entry = COLLECTORS["http"]
    extra = {} if max_body is None else {"max_body_bytes": max_body}
    resources = Resources()
    collector = entry.build(entry.params.model_validate({"url": url, "timeout": "60s", **extra}), resources)
    kept: list[BaseException] = []  # as a run's last error and a retry loop would keep them
    t0 = time.perf_counter()
    for _ in range(runs):
        try:
            await collector.collect(Window(0, 60, dt.timedelta(minutes=1), ZoneInfo("UTC")))
        except CollectError as exc:
            kept.append(exc)
    seconds = time.perf_counter() - t0
    await resources.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    limit = "default max_body_bytes" if max_body is None else f"max_body_bytes {max_body / 2**20:.0f} MiB"
    print(
        f"http      100 MB answer x{runs}, {limit}: RSS after {rss_mib():,.0f} MiB, peak {peak:,.0f} MiB, "
        f"{seconds:.1f} s, {str(kept[-1])[:60] if kept else 'no error'}"
    )


def serve_big() -> tuple[subprocess.Popen[bytes], str]:
    """100 MB of text (not JSON) from a server in its own process (its memory is not ours)."""
    import socket

    root = Path(tempfile.mkdtemp())
    with (root / "big.txt").open("wb") as fh:
        for _ in range(100):
            fh.write(b"<html>" + b"x" * (1_000_000 - 6))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1", "-d", str(root)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/big.txt"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_500_000
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    if os.environ.get("DTK_HTTP"):
        body = os.environ.get("DTK_MAX_BODY")
        asyncio.run(http_runs(os.environ["DTK_HTTP"], int(body) if body else None))
        return
    if os.environ.get("DTK_ONE"):
        asyncio.run(one(os.environ["DTK_ONE"], n, limit))
        return
    kinds = os.environ.get("DTK_KINDS", "postgres,mysql,sqlite,http").split(",")
    for kind in (k for k in kinds if k in QUERIES):  # one process each: ru_maxrss is per process
        subprocess.run(
            [sys.executable, __file__, str(n), str(limit)], env={**os.environ, "DTK_ONE": kind}, check=True
        )
    if "http" in kinds:
        server, url = serve_big()
        try:
            for max_body in os.environ.get("DTK_MAX_BODIES", f",{128 * 2**20}").split(","):
                env = {**os.environ, "DTK_HTTP": url, "DTK_MAX_BODY": max_body}
                subprocess.run([sys.executable, __file__], env=env, check=True)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
