"""JSON logs stay JSON: library tracebacks (aiohttp, APScheduler, asyncio) are one line each."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import asyncio, logging
from detectkd import logs
logs.configure("json")
try:
    raise RuntimeError("boom with token=sup3rsecret99")
except RuntimeError:
    logging.getLogger("aiohttp.server").exception("Error handling request")
logging.getLogger("apscheduler.executors.default").error("Job failed", exc_info=(ValueError, ValueError("x"), None))

async def main():
    async def fail():
        raise KeyError("lost")
    task = asyncio.ensure_future(fail())
    await asyncio.sleep(0.01)
    del task  # never retrieved: asyncio logs it when the task is collected
    import gc; gc.collect()
asyncio.run(main())
"""


def test_library_tracebacks_are_json_lines_without_secrets() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    by_logger = {e.get("logger"): e for e in events}
    assert "RuntimeError: boom" in by_logger["aiohttp.server"]["exception"]
    assert "sup3rsecret99" not in done.stderr
    assert by_logger["apscheduler.executors.default"]["level"] == "error"
    assert any("never retrieved" in e["event"] for e in events if e.get("logger") == "asyncio")


def test_console_lines_print_an_alert_text_below_the_line_not_as_escapes() -> None:
    script = (
        "from detectkd import logs\nimport structlog\nlogs.configure('console')\n"
        "structlog.get_logger('t').warning('alert FIRING', metric='orders', message='[FIRING] orders\\nValue: 9')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    first, *rest = out.stderr.splitlines()
    assert "alert FIRING" in first and "metric=orders" in first and "\\n" not in out.stderr
    assert rest == ["    [FIRING] orders", "    Value: 9"]
