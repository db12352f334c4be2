"""The README's first command: the embedded default fires and resolves within two minutes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

from tests.conftest import REPO
from tests.e2e.conftest import free_port


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
    try:
        while time.monotonic() - started < 120 and not {"FIRING", "RESOLVED"} <= seen:
            assert proc.returncode is None, log.read_text()[-3000:]
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    event = json.loads(line)
                    if event.get("event", "").startswith("alert ") and event.get("status"):
                        seen.add(event["status"])
            await asyncio.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert {"FIRING", "RESOLVED"} <= seen, log.read_text()[-3000:]
    assert time.monotonic() - started < 120
