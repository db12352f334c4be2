"""The test harness's own promise: a daemon whose start failed is not left running."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import process
from tests.support.files import write
from tests.support.process import DaemonProcess


async def test_a_start_that_times_out_leaves_no_daemon_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start that never saw /readyz 200 (here: a readiness check that always says no) kills
    the process: a leaked daemon ran for hours beside the later tests and benchmarks."""
    write(tmp_path / "profiles.yaml", "profiles: {}\n")
    d = DaemonProcess(tmp_path)
    monkeypatch.setattr(process, "READY_TIMEOUT_S", 1.0)

    async def never() -> bool:
        return False

    monkeypatch.setattr(d, "ready", never)
    with pytest.raises(AssertionError, match="timed out waiting for /readyz 200"):
        await d.start()
    assert d.proc is not None and d.proc.returncode is not None
