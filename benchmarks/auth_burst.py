"""Basic auth under a burst of wrong passwords: how long a logged-in scrape of /metrics
takes while N clients (from other addresses than the scraper's... here all from 127.0.0.1,
the worst case for throttling) send wrong passwords as fast as they can.

    .venv/bin/python -m benchmarks.auth_burst --attackers 50 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import bcrypt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectkd.config.settings import Settings, StorageSettings
from detectkd.http.app import make_app
from detectkd.http.edge import serve
from detectkd.http.webconfig import WebConfig
from detectkd.runtime.daemon import Daemon


def header(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def run(attackers: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "metrics.d").mkdir()
        store = StorageSettings(path=root / "data" / "dtk.db")
        settings = Settings(
            metrics_dir=root / "metrics.d",
            profiles_file=None,
            data_dir=root / "data",
            storage=store,
            listen="127.0.0.1:0",
        )
        d = Daemon(settings)
        await d.start()
        hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=10)).decode()  # htpasswd -B's cost
        config = WebConfig(basic_auth_users={"ops": hashed})
        runner = await serve(make_app(d, config), "127.0.0.1", 0, config, None)
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        stop = asyncio.Event()
        statuses: dict[int, int] = {}

        async def attack(i: int) -> None:
            async with aiohttp.ClientSession(headers=header(f"user{i % 3}", "wrong")) as s:
                while not stop.is_set():
                    async with s.get(base + "/metrics") as r:
                        statuses[r.status] = statuses.get(r.status, 0) + 1

        async def scrape(times: list[float]) -> None:
            async with aiohttp.ClientSession(headers=header("ops", "right")) as s:
                async with s.get(base + "/metrics") as r:  # the first check: bcrypt, then cached
                    assert r.status == 200
                while not stop.is_set():
                    t0 = time.perf_counter()
                    async with s.get(base + "/metrics") as r:
                        await r.read()
                    times.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.1)

        quiet: list[float] = []
        task = asyncio.ensure_future(scrape(quiet))
        await asyncio.sleep(seconds / 2)
        stop.set()
        await task
        stop.clear()
        busy: list[float] = []
        tasks = [asyncio.ensure_future(attack(i)) for i in range(attackers)]
        task = asyncio.ensure_future(scrape(busy))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(task, *tasks)
        await runner.cleanup()
        d.scheduler.shutdown(wait=False)
        await d.close()

    def ms(xs: list[float]) -> str:
        xs = sorted(xs)
        return (
            f"median {statistics.median(xs) * 1000:.1f} ms, worst {xs[-1] * 1000:.1f} ms ({len(xs)} scrapes)"
        )

    print(f"logged-in scrape, quiet: {ms(quiet)}")
    print(f"logged-in scrape, {attackers} clients sending wrong passwords: {ms(busy)}")
    print(f"attackers' answers: {dict(sorted(statuses.items()))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attackers", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    asyncio.run(run(args.attackers, args.seconds))


if __name__ == "__main__":
    main()
