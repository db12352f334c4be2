"""Failover benchmark: an HA pair of one shard on the machine's PostgreSQL, the leader killed.

    .venv/bin/python benchmarks/failover.py [--metrics 200] [--lease 15] [--rounds 3]

Starts two `detectkd run` replicas with `ha.enabled` on one fresh PostgreSQL database
(127.0.0.1:5432, user postgres) and `--metrics` one-second metrics, waits until one leads
and the metrics run, then `kill -9`s the leader and measures, from the kill:

- `takeover_s`: until the standby reports `"leader": true` in /api/v1/metrics;
- `first_run_s`: until the new leader's check counter moves (it runs the metrics again).

The killed replica is restarted as the new standby and the next round kills the leader
again. Prints one line per round and the lease, so the figure reads as "one lease and one
try" (a standby tries every lease / 4).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.net import free_port  # noqa: E402

METRIC = """\
name: m{i}
schedule: {{interval: 1s}}
collector:
  type: sqlite
  params: {{database: {db}, query: "SELECT {i} AS value"}}
detector:
  type: threshold
  params: {{operator: greater_than, threshold: 1000000}}
alerter:
  type: log
"""


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return str(r.read().decode())


def leads(port: int) -> bool:
    try:
        return bool(json.loads(get(port, "/api/v1/metrics?limit=1"))["ha"]["leader"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ready(port: int) -> bool:
    try:
        get(port, "/readyz")
        return True
    except OSError:
        return False


def checks(port: int) -> float:
    try:
        text = get(port, "/metrics")
    except OSError:
        return 0.0
    return sum(float(v) for v in re.findall(r"^detectk_checks_total\{[^}]*\} (\S+)$", text, re.M))


def wait(cond: Callable[[], bool], timeout: float) -> float:
    began = time.monotonic()
    while not cond():
        if time.monotonic() - began > timeout:
            raise SystemExit("timed out")
        time.sleep(0.05)
    return time.monotonic() - began


def start(root: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (root / f"daemon-{port}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "detectkd", "run", "--config", str(root / "detectkd.yaml")],
        stdout=log,
        stderr=log,
        env={**os.environ, **env, "DETECTK_LISTEN": f"127.0.0.1:{port}"},
    )


async def database() -> str:
    name = f"dtk_failover_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    return name


async def drop(name: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.close()


def one_round(
    ports: list[int], procs: dict[int, subprocess.Popen[bytes]], root: Path, env: dict[str, str], lease: float
) -> tuple[float, float]:
    """Kill the leader; (seconds until the standby leads, until it has run the metrics)."""
    leader = next(p for p in ports if leads(p))
    standby = next(p for p in ports if p != leader)
    wait(lambda: checks(leader) > 0, 60)
    procs[leader].kill()  # kill -9
    killed = time.monotonic()
    procs[leader].wait()
    before = checks(standby)
    wait(lambda: leads(standby), 10 * lease)
    takeover = time.monotonic() - killed
    wait(lambda: checks(standby) > before, 60)
    first_run = time.monotonic() - killed
    procs[leader] = start(root, leader, env)  # back as the standby
    wait(lambda: ready(leader), 120)
    return takeover, first_run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", type=int, default=200)
    ap.add_argument("--lease", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    db = asyncio.run(database())
    env = {
        "DETECTK_STORAGE__TYPE": "postgres",
        "DETECTK_STORAGE__HOST": "127.0.0.1",
        "DETECTK_STORAGE__PORT": "5432",
        "DETECTK_STORAGE__USER": "postgres",
        "DETECTK_STORAGE__DATABASE": db,
        "DETECTK_HA__ENABLED": "true",
        "DETECTK_HA__LEASE": f"{args.lease}s",
        "DETECTK_LOG_FORMAT": "json",
    }
    print(
        f"machine: {os.cpu_count()} cpu, python {sys.version.split()[0]}, {args.metrics} metrics "
        f"every 1s, lease {args.lease:g}s (standbys try every {args.lease / 4:g}s)"
    )
    print(f"{'round':>6} {'takeover_s':>11} {'first_run_s':>12}")
    procs: dict[int, subprocess.Popen[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="dtk-failover-") as tmp:
        root = Path(tmp)
        (root / "src.db").touch()
        (root / "metrics.d").mkdir()
        for i in range(args.metrics):
            (root / "metrics.d" / f"m{i}.yaml").write_text(METRIC.format(i=i, db=root / "src.db"))
        (root / "detectkd.yaml").write_text("metrics_dir: metrics.d\nprofiles_file: null\ndata_dir: data\n")
        ports = [free_port(), free_port()]
        try:
            for port in ports:
                procs[port] = start(root, port, env)
            wait(lambda: any(leads(p) for p in ports), 120)
            for n in range(1, args.rounds + 1):
                takeover, first_run = one_round(ports, procs, root, env, args.lease)
                print(f"{n:>6} {takeover:>11.2f} {first_run:>12.2f}", flush=True)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
            asyncio.run(drop(db))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
