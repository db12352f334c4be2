"""Host-list failover timings (issue 26), with the shipped connect timeout and retry hold.

    .venv/bin/python benchmarks/host_failover.py [--clickhouse]

For the PostgreSQL source (127.0.0.1:5432, user postgres, db postgres) and, with
`--clickhouse`, the ClickHouse source (a private server, as the tests start one),
one `SELECT` through a host list whose
first host

- refuses (nothing listens): `refused_first_s`, the failover cost;
- black-holes (a listener with a full accept queue: SYNs unanswered):
  `black_hole_first_s` — one connect timeout (CONNECT_TIMEOUT_S), then the second host;
- black-holed, again right after (`black_hole_then_s`): the failed host is tried last
  for RETRY_S, so the next new connection does not pay again.

Prints one JSON line per source.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectkd.collectors.base import Collector, Window
from detectkd.collectors.clickhouse import Params as ChParams
from detectkd.collectors.params import NetworkParams
from detectkd.collectors.registry import COLLECTORS
from detectkd.resources import Resources
from tests.support.clickhouse_server import remove, start_server
from tests.support.tcp_proxy import black_hole, dead_port

W = Window(0, 600, dt.timedelta(minutes=10), ZoneInfo("UTC"))


async def once(c: Collector) -> float:
    start = time.monotonic()
    await c.collect(W)
    return round(time.monotonic() - start, 3)


async def measure(kind: str, real: str, build: Callable[[str, Resources], Collector]) -> dict[str, object]:
    out: dict[str, object] = {"source": kind}
    with black_hole() as hole:
        for name, first in (("refused_first_s", dead_port()), ("black_hole_first_s", hole)):
            resources = Resources()
            try:
                c = build(f"127.0.0.1:{first},{real}", resources)
                out[name] = await once(c)
                if name == "black_hole_first_s":
                    for pool in resources._pools.values():  # new connections (PostgreSQL)
                        if hasattr(pool, "_pool"):
                            await pool._pool.expire_connections()
                    out["black_hole_then_s"] = await once(c)
            finally:
                await resources.close()
    return out


def pg(hosts: str, resources: Resources) -> Collector:
    params = NetworkParams(host=hosts, user="postgres", database="postgres", query="SELECT now() AS v")
    return COLLECTORS["postgres"].build(params, resources, value_column="v")


def ch(hosts: str, resources: Resources) -> Collector:
    return COLLECTORS["clickhouse"].build(ChParams(host=hosts, query="SELECT 1 AS value"), resources)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clickhouse", action="store_true")
    args = ap.parse_args()
    print(json.dumps(await measure("postgres", "127.0.0.1:5432", pg)))
    if args.clickhouse:
        server = start_server()
        try:
            print(json.dumps(await measure("clickhouse", f"127.0.0.1:{server.http_port}", ch)))
        finally:
            remove(server)


if __name__ == "__main__":
    asyncio.run(main())
