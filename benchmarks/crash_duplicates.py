"""Duplicate notifications and lateness across `kill -9` and store outages (issue 26).

    .venv/bin/python benchmarks/crash_duplicates.py [--kills 20] [--metrics 5] [--outage 30]

Runs the real `detectkd run` with `--metrics` one-second metrics whose value crosses a
threshold every period, so each metric notifies every second (FIRING, RESOLVED, FIRING ...)
to a webhook receiver in this process, which records each body and when it came. Then:

- `kill -9`: `--kills` times the daemon is killed with SIGKILL and started again (SQLite
  store): every other time at a random moment 0.5-3 s after it became ready, and in between
  while a delivery waits for its answer (the receiver holds a request unanswered, kills
  the daemon, and does not count that request: it was never accepted);
- `sqlite lock`: at a notification, before answering it, the receiver takes SQLite's write
  lock on the daemon's store from another connection and holds it 30 s + `--outage`: after
  SQLite's 30 s busy timeout every write fails for `--outage` seconds, the delivery's
  done-mark among them;
- `postgres down`: the daemon's PostgreSQL store is reached through a TCP proxy in this
  process; at a notification, before answering it, the receiver stops the proxy (every
  connection cut, new ones refused) for `--outage` seconds.

For each it prints the notifications received, the duplicates (a key received more than
once) and the worst lateness: from the commit of the row (its `created_at` in the store) to
its arrival at the receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.metrics import TOGGLING  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.tcp_proxy import TcpProxy  # noqa: E402

BUSY_S = 30.0  # the SQLite store's busy timeout


@dataclass
class Receiver:
    """Records (key, arrival time) of every body; `on_body` runs before the 200 answer.
    When `hold` is armed, the next request is held unanswered (and not recorded: it is
    never accepted) until `hold` is set."""

    got: list[tuple[str, float]] = field(default_factory=list)
    on_body: Callable[[], Awaitable[None]] | None = None
    url: str = ""
    hold: asyncio.Event | None = None
    holding: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if (release := self.hold) is not None:
            self.hold = None
            self.holding.set()
            await release.wait()
            return web.Response(status=503)
        self.got.append((str(body["key"]), time.time()))
        if self.on_body is not None:
            hook, self.on_body = self.on_body, None
            await hook()
        return web.Response(text="ok")


@dataclass
class Result:
    name: str
    received: int
    duplicates: int
    late_s: float  # worst, from a row's commit to its arrival
    late_back_s: float | None = None  # worst, from max(commit, the store's return) to arrival
    mark_retries: int = 0  # done-marks the store refused, retried without sending again

    def line(self) -> str:
        back = "" if self.late_back_s is None else f"  (behind the store's return {self.late_back_s:.2f} s)"
        return (
            f"{self.name:17} received {self.received:5d}  duplicates {self.duplicates}  "
            f"worst lateness {self.late_s:.2f} s{back}  done-marks retried {self.mark_retries}"
        )


class Daemon:
    def mark_retries(self) -> int:
        log = (self.root / "daemon.log").read_text(errors="replace")
        return log.count('"delivered alert not yet marked sent"')

    def __init__(self, root: Path, n: int, url: str, storage: str = "") -> None:
        self.root, self.port = root, free_port()
        db = root / "src.db"
        sqlite3.connect(db).close()
        (root / "metrics.d").mkdir()
        for i in range(n):
            (root / "metrics.d" / f"m{i}.yaml").write_text(TOGGLING.format(name=f"m{i}", db=db, url=url))
        (root / "detectkd.yaml").write_text(
            f"metrics_dir: metrics.d\ndata_dir: data\nlisten: 127.0.0.1:{self.port}\n"
            f"log_format: json\nlog_level: warning\nrestart_snapshot: false\n{storage}"
        )
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = (self.root / "daemon.log").open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "detectkd",
            "run",
            "--config",
            str(self.root / "detectkd.yaml"),
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise SystemExit(f"daemon exited: {(self.root / 'daemon.log').read_text()[-2000:]}")
                try:
                    async with s.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise SystemExit("daemon not ready within 60 s")

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.wait(), 60)


async def serve(receiver: Receiver) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    return runner


def judge(
    name: str,
    got: list[tuple[str, float]],
    created: dict[str, float],
    ended: float,
    back: float | None = None,
) -> Result:
    """A row never received counts as late until `ended` (when the daemon was stopped)."""
    counts = Counter(key for key, _ in got)
    first: dict[str, float] = {}
    for key, at in got:
        first.setdefault(key, at)
    late = max((first.get(key, ended) - at for key, at in created.items()), default=0.0)
    result = Result(name, len(got), sum(c - 1 for c in counts.values()), late)
    if back is not None:
        result.late_back_s = max(
            (first.get(k, ended) - max(at, back) for k, at in created.items()), default=0.0
        )
    return result


def sqlite_created(path: Path) -> dict[str, float]:
    with sqlite3.connect(path) as c:
        return {str(k): float(t) for k, t in c.execute("SELECT key, created_at FROM dtk_outbox")}


async def kill_loop(n: int, kills: int, rng: random.Random) -> Result:
    receiver = Receiver()
    runner = await serve(receiver)
    with tempfile.TemporaryDirectory(prefix="dtk-crash-") as tmp:
        daemon = Daemon(Path(tmp), n, receiver.url)
        try:
            await daemon.start()
            for i in range(kills):
                if i % 2:  # while a delivery waits for its answer
                    release = receiver.hold = asyncio.Event()
                    receiver.holding.clear()
                    with contextlib.suppress(TimeoutError):  # nothing sent for 10 s: killed anyway
                        await asyncio.wait_for(receiver.holding.wait(), 10)
                    await asyncio.sleep(rng.uniform(0, 0.2))
                    await daemon.stop(signal.SIGKILL)
                    receiver.hold = None
                    release.set()
                else:  # at a random moment
                    await asyncio.sleep(rng.uniform(0.5, 3.0))
                    await daemon.stop(signal.SIGKILL)
                await daemon.start()
            await asyncio.sleep(3)
        finally:
            ended = time.time()
            await daemon.stop()
        created = sqlite_created(Path(tmp) / "data" / "detectkd.db")
    await runner.cleanup()
    return judge(f"kill -9 x{kills}", receiver.got, created, ended)


async def sqlite_lock(n: int, outage: float, settle: float) -> Result:
    """The lock is held 30 s + `outage`: past SQLite's 30 s busy timeout, writes fail."""
    receiver = Receiver()
    runner = await serve(receiver)
    with tempfile.TemporaryDirectory(prefix="dtk-lock-") as tmp:
        daemon = Daemon(Path(tmp), n, receiver.url)
        store = Path(tmp) / "data" / "detectkd.db"
        back: list[float] = []
        try:
            await daemon.start()
            locker = sqlite3.connect(store, isolation_level=None, check_same_thread=False, timeout=30)
            released = asyncio.Event()

            def unlock() -> None:
                locker.execute("COMMIT")
                back.append(time.time())
                released.set()

            async def lock() -> None:  # while a delivery waits for its answer
                await asyncio.to_thread(locker.execute, "BEGIN IMMEDIATE")
                asyncio.get_running_loop().call_later(BUSY_S + outage, unlock)

            await asyncio.sleep(3)
            receiver.on_body = lock
            await released.wait()
            locker.close()
            await asyncio.sleep(settle)
        finally:
            ended = time.time()
            await daemon.stop()
        created = sqlite_created(store)
        retries = daemon.mark_retries()
    await runner.cleanup()
    result = judge(f"sqlite lock {BUSY_S + outage:g}s", receiver.got, created, ended, back[0])
    result.mark_retries = retries
    return result


async def postgres_down(n: int, outage: float, settle: float) -> Result:
    receiver = Receiver()
    runner = await serve(receiver)
    name = f"dtk_crash_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    restored = asyncio.Event()

    async def cut() -> None:
        await proxy.stop()
        asyncio.get_running_loop().call_later(outage, lambda: asyncio.ensure_future(restore()))

    back: list[float] = []

    async def restore() -> None:
        await proxy.start()
        back.append(time.time())
        restored.set()

    where = f"host: 127.0.0.1, port: {proxy.port}, user: postgres, database: {name}"
    storage = f"storage: {{type: postgres, {where}}}\n"
    try:
        with tempfile.TemporaryDirectory(prefix="dtk-pg-") as tmp:
            daemon = Daemon(Path(tmp), n, receiver.url, storage)
            try:
                await daemon.start()
                await asyncio.sleep(3)
                receiver.on_body = cut
                await restored.wait()
                await asyncio.sleep(settle)
            finally:
                ended = time.time()
                await daemon.stop()
            retries = daemon.mark_retries()
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=name)
        created = {
            r["key"]: r["created_at"] for r in await conn.fetch("SELECT key, created_at FROM dtk_outbox")
        }
        await conn.close()
    finally:
        await proxy.stop()
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
        await runner.cleanup()
    result = judge(f"postgres down {outage:g}s", receiver.got, created, ended, back[0])
    result.mark_retries = retries
    return result


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--metrics", type=int, default=5)
    ap.add_argument("--outage", type=float, default=30.0)
    ap.add_argument("--settle", type=float, default=130.0, help="seconds watched after an outage")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "0")) or None)
    ap.add_argument("--only", choices=["kill", "sqlite", "postgres"])
    args = ap.parse_args()
    rng = random.Random(args.seed)
    results = []
    if args.only in (None, "kill"):
        results.append(await kill_loop(args.metrics, args.kills, rng))
        print(results[-1].line(), flush=True)
    if args.only in (None, "sqlite"):
        results.append(await sqlite_lock(args.metrics, args.outage, args.settle))
        print(results[-1].line(), flush=True)
    if args.only in (None, "postgres"):
        results.append(await postgres_down(args.metrics, args.outage, args.settle))
        print(results[-1].line(), flush=True)
    return 1 if any(r.duplicates for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
