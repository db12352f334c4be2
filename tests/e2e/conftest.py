"""Fixtures of the end-to-end tests: the real `detectkd` process (tests/support/process.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.process import DaemonProcess


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    d = DaemonProcess(tmp_path)
    yield d
    await d.kill()
