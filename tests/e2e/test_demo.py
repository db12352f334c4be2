"""The README's first command: the embedded default fires and resolves within two minutes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path

import aiohttp

from tests.support.files import REPO
from tests.support.http import basic_auth
from tests.support.net import free_port


async def test_scripts_demo_fires_and_resolves_within_two_minutes(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {
        **os.environ,
        "DETECTK_DATA_DIR": str(tmp_path / "data"),
        "DETECTK_DEMO_DB": str(tmp_path / "demo" / "shop.db"),
        "DETECTK_LISTEN": f"127.0.0.1:{port}",
        "DETECTK_LOG_FORMAT": "json",
    }
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(REPO / "scripts" / "demo"), stdout=out, stderr=out, env=env, start_new_session=True
        )
    started = time.monotonic()
    seen: set[str] = set()
    whys: dict[str, list[str]] = {}  # each FIRING's "Why:" line (runtime.explain), by key
    where: list[str] = []  # the orders FIRINGs' "Where:" lines (explain:)
    try:
        while time.monotonic() - started < 120 and not ({"FIRING", "RESOLVED"} <= seen and where):
            assert proc.returncode is None, log.read_text()[-3000:]
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    event = json.loads(line)
                    if event.get("event", "").startswith("alert ") and event.get("status"):
                        seen.add(event["status"])
                        text = str(event.get("message", ""))
                        if event["status"] == "FIRING":
                            lines = text.splitlines()
                            whys[event["key"]] = [x for x in lines if x.startswith("Why: ")]
                            if "Where:\n  1. region=" in text:
                                where.append(text)
            await asyncio.sleep(0.5)
        assert time.monotonic() - started < 120, (seen, len(where), log.read_text(errors="replace")[-4000:])
        await _a_newcomer_can_write(f"http://127.0.0.1:{port}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert {"FIRING", "RESOLVED"} <= seen, log.read_text()[-3000:]
    assert whys and all(w and w[0].startswith("Why: value ") for w in whys.values()), whys  # each its change
    assert where and where[0].startswith("[FIRING] demo_orders"), log.read_text()[-3000:]
    assert oct((tmp_path / "data" / "demo-web.yml").stat().st_mode & 0o777) == "0o600"


async def _a_newcomer_can_write(base: str) -> None:
    """The demo's login (demo/demo) lets the UI's feedback, silences and backtests work."""
    async with aiohttp.ClientSession() as anonymous, anonymous.get(base + "/api/v1/metrics") as r:
        assert r.status == 401
    async with aiohttp.ClientSession(headers=basic_auth("demo", "demo")) as http:
        label = {"metric": "demo_orders", "period": int(time.time()) // 60 * 60, "label": "incident"}
        async with http.post(base + "/api/v1/feedback", json=label) as r:
            assert r.status == 201, await r.text()
            assert (await r.json())["feedback"]["by"] == "demo"
        async with http.post(base + "/api/v1/metrics/demo_orders/backtest", json={"range": "1h"}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["points"] > 0


async def test_killing_scripts_demo_by_its_pid_stops_what_it_started(tmp_path: Path) -> None:
    """Issue 13: `kill <pid of scripts/demo>` left `detectkd run` orphaned, holding its port."""
    import socket

    port = free_port()
    env = {
        **os.environ,
        "DETECTK_DATA_DIR": str(tmp_path / "data"),
        "DETECTK_LISTEN": f"127.0.0.1:{port}",
        "DETECTK_DEMO_DB": str(tmp_path / "demo" / "shop.db"),
        "DETECTK_LOG_FORMAT": "json",
    }
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(REPO / "scripts" / "demo"), stdout=out, stderr=out, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while b'"detectkd started"' not in log.read_bytes():
            assert time.monotonic() < deadline and proc.returncode is None, log.read_text()[-2000:]
            await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)  # the script only, as `kill <pid>` does
        await asyncio.wait_for(proc.wait(), 40)
        deadline = time.monotonic() + 30
        while True:  # the daemon let go of its port: it is gone too
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    break
            assert time.monotonic() < deadline, "detectkd run still listens after the script was killed"
            await asyncio.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
