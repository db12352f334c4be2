"""Test servers run as child processes (ClickHouse, Prometheus, Alertmanager, PgBouncer):
waiting for one to answer, and stopping it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def wait_started(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    log: Callable[[], str],
) -> None:
    """Poll `ready` until it is true; fail with the log's tail if the process exits or the
    deadline passes first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log()[-2000:]}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 10) -> None:
    """SIGTERM, and SIGKILL after `grace` seconds."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
